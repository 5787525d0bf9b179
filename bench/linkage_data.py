"""Synthetic municipal files in the import contract's formats, with ground truth.

``generate(out_dir, n_children, seed)`` writes ``roster.csv`` and one file per
source (some CP932, some UTF-8 with BOM, one XLSX-free CSV each), plus
``truth.json``: for every source, the true 児童生徒番号 of each data row (or
null for a person who is not in the roster). Hard cases on purpose: variant
kanji, kana-only and romaji names, half-width kana, era dates, typos, stale
numbers, twins and siblings, people outside the roster.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import jaconv

FAMILY = [
    ("高橋", "タカハシ", "takahashi"), ("山田", "ヤマダ", "yamada"), ("佐藤", "サトウ", "satou"), ("鈴木", "スズキ", "suzuki"),
    ("田中", "タナカ", "tanaka"), ("伊藤", "イトウ", "itou"), ("渡辺", "ワタナベ", "watanabe"), ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"), ("加藤", "カトウ", "katou"), ("吉田", "ヨシダ", "yoshida"), ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"), ("井上", "イノウエ", "inoue"), ("木村", "キムラ", "kimura"), ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saitou"), ("清水", "シミズ", "shimizu"), ("山崎", "ヤマザキ", "yamazaki"), ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"), ("橋本", "ハシモト", "hashimoto"), ("阿部", "アベ", "abe"), ("石川", "イシカワ", "ishikawa"),
    ("前田", "マエダ", "maeda"), ("藤田", "フジタ", "fujita"), ("小川", "オガワ", "ogawa"), ("岡田", "オカダ", "okada"),
    ("長谷川", "ハセガワ", "hasegawa"), ("村上", "ムラカミ", "murakami"), ("沢口", "サワグチ", "sawaguchi"), ("浜田", "ハマダ", "hamada"),
    ("島田", "シマダ", "shimada"), ("桜井", "サクライ", "sakurai"), ("広瀬", "ヒロセ", "hirose"), ("富田", "トミタ", "tomita"),
    ("関口", "セキグチ", "sekiguchi"), ("辺見", "ヘンミ", "henmi"), ("高田", "タカダ", "takada"), ("西村", "ニシムラ", "nishimura"),
    ("福田", "フクダ", "fukuda"), ("太田", "オオタ", "oota"), ("三浦", "ミウラ", "miura"), ("藤井", "フジイ", "fujii"),
    ("岡本", "オカモト", "okamoto"), ("松田", "マツダ", "matsuda"), ("中川", "ナカガワ", "nakagawa"), ("中野", "ナカノ", "nakano"),
    ("原田", "ハラダ", "harada"), ("小野", "オノ", "ono"), ("田村", "タムラ", "tamura"), ("竹内", "タケウチ", "takeuchi"),
    ("金子", "カネコ", "kaneko"), ("和田", "ワダ", "wada"), ("中山", "ナカヤマ", "nakayama"), ("石田", "イシダ", "ishida"),
    ("上田", "ウエダ", "ueda"), ("森田", "モリタ", "morita"), ("原", "ハラ", "hara"), ("柴田", "シバタ", "shibata"),
    ("酒井", "サカイ", "sakai"), ("工藤", "クドウ", "kudou"), ("横山", "ヨコヤマ", "yokoyama"), ("宮崎", "ミヤザキ", "miyazaki"),
    ("宮本", "ミヤモト", "miyamoto"), ("内田", "ウチダ", "uchida"), ("高木", "タカギ", "takagi"), ("安藤", "アンドウ", "andou"),
    ("谷口", "タニグチ", "taniguchi"), ("大野", "オオノ", "oono"), ("丸山", "マルヤマ", "maruyama"), ("今井", "イマイ", "imai"),
    ("河野", "コウノ", "kouno"), ("藤原", "フジワラ", "fujiwara"), ("村田", "ムラタ", "murata"), ("武田", "タケダ", "takeda"),
]
GIVEN_M = [
    ("太郎", "タロウ", "tarou"), ("翔", "ショウ", "shou"), ("蓮", "レン", "ren"), ("悠真", "ユウマ", "yuuma"), ("大翔", "ヒロト", "hiroto"),
    ("湊", "ミナト", "minato"), ("陽太", "ヒナタ", "hinata"), ("健", "ケン", "ken"), ("颯", "ハヤテ", "hayate"), ("樹", "イツキ", "itsuki"),
    ("悠人", "ユウト", "yuuto"), ("陸", "リク", "riku"), ("朝陽", "アサヒ", "asahi"), ("蒼", "アオイ", "aoi"), ("律", "リツ", "ritsu"),
    ("大和", "ヤマト", "yamato"), ("海斗", "カイト", "kaito"), ("颯太", "ソウタ", "souta"), ("拓海", "タクミ", "takumi"), ("一輝", "カズキ", "kazuki"),
    ("隼", "ハヤト", "hayato"), ("亮", "リョウ", "ryou"), ("晴", "ハル", "haru"), ("新", "アラタ", "arata"), ("誠", "マコト", "makoto"),
]
GIVEN_F = [
    ("花子", "ハナコ", "hanako"), ("結衣", "ユイ", "yui"), ("陽菜", "ヒナ", "hina"), ("葵", "アオイ", "aoi"), ("凛", "リン", "rin"),
    ("さくら", "サクラ", "sakura"), ("美咲", "ミサキ", "misaki"), ("芽依", "メイ", "mei"), ("紬", "ツムギ", "tsumugi"), ("結菜", "ユイナ", "yuina"),
    ("杏", "アン", "an"), ("莉子", "リコ", "riko"), ("澪", "ミオ", "mio"), ("楓", "カエデ", "kaede"), ("心春", "コハル", "koharu"),
    ("美月", "ミツキ", "mitsuki"), ("桃子", "モモコ", "momoko"), ("彩", "アヤ", "aya"), ("千尋", "チヒロ", "chihiro"), ("奈々", "ナナ", "nana"),
    ("愛", "アイ", "ai"), ("遥", "ハルカ", "haruka"), ("真央", "マオ", "mao"), ("優奈", "ユウナ", "yuuna"), ("詩", "ウタ", "uta"),
]
VARIANT_OF = {"高": "髙", "崎": "﨑", "辺": "邊", "斎": "齋", "沢": "澤", "浜": "濱", "島": "嶋", "桜": "櫻", "広": "廣", "富": "冨", "関": "關"}
TOWNS = ["みまもり町", "ひだまり町", "こもれび町", "あおぞら町", "せせらぎ町", "はなみずき町", "ゆうひ町", "つばさ町"]
KANSUJI = "〇一二三四五六七八九"
ERAS = [("令和", "R", date(2019, 5, 1), 2018), ("平成", "H", date(1989, 1, 8), 1988)]


@dataclass
class Kid:
    student_no: str
    atena_no: str
    family: tuple
    given: tuple
    dob: date
    sex: str
    address: tuple  # (town, chome, ban, go)
    school: str
    grade: int
    klass: str
    no: int
    consented: bool = True

    @property
    def name(self) -> str:
        return f"{self.family[0]} {self.given[0]}"

    @property
    def kana(self) -> str:
        return f"{self.family[1]} {self.given[1]}"


def _school_year_grade(dob: date, fy: int = 2026) -> int:
    # children born 2 Apr Y .. 1 Apr Y+1 enter grade 1 in April Y+7
    y = dob.year if (dob.month, dob.day) >= (4, 2) else dob.year - 1
    return fy - (y + 6)


def make_children(n: int, rng: random.Random) -> list[Kid]:
    kids: list[Kid] = []
    seq = 0
    while len(kids) < n:
        fam = rng.choice(FAMILY)
        addr = (rng.choice(TOWNS), rng.randint(1, 9), rng.randint(1, 30), rng.randint(1, 20))
        size = rng.choices([1, 2, 3], [0.55, 0.35, 0.10])[0]
        twins = rng.random() < 0.02
        base = date(2011, 4, 2) + timedelta(days=rng.randint(0, 365 * 9 - 1))
        used_given: set[str] = set()
        for i in range(size if not twins else 2):
            if twins:
                dob = base
            else:
                dob = base + timedelta(days=i * rng.randint(300, 900))
            grade = _school_year_grade(dob)
            if not 1 <= grade <= 9:
                continue
            sex = rng.choice("MF")
            pool = GIVEN_M if sex == "M" else GIVEN_F
            given = rng.choice(pool)
            while given[0] in used_given:
                given = rng.choice(pool)
            used_given.add(given[0])
            seq += 1
            school = f"E{(seq % 12) + 1:03d}" if grade <= 6 else f"J{(seq % 5) + 1:03d}"
            kids.append(Kid(f"S{seq:07d}", f"{rng.randint(10**9, 10**10 - 1)}", fam, given, dob, sex, addr,
                            school, grade, str(rng.randint(1, 4)), 0))
    kids = kids[:n]
    for i, k in enumerate(kids):
        k.no = i % 35 + 1
    return kids


# -- corruptions ------------------------------------------------------------------


def variant(text: str, rng: random.Random) -> str:
    return "".join(VARIANT_OF.get(c, c) if rng.random() < 0.7 else c for c in text)


def typo(text: str, rng: random.Random) -> str:
    chars = list(text.replace(" ", ""))
    if len(chars) < 3:
        return text
    i = rng.randrange(1, len(chars))
    chars[i] = rng.choice("一二三子美央郎介也") if "\u4e00" <= chars[i] <= "\u9fff" else rng.choice("アイウカキクサシタナハマラ")
    return "".join(chars)


def date_text(d: date, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return d.isoformat()
    if r < 0.5:
        return f"{d.year}/{d.month}/{d.day}"
    if r < 0.6:
        return d.strftime("%Y%m%d")
    for kanji, letter, start, base in ERAS:
        if d >= start:
            y = d.year - base
            if rng.random() < 0.5:
                return f"{kanji}{'元' if y == 1 else y}年{d.month}月{d.day}日"
            return f"{letter}{y}.{d.month:02d}.{d.day:02d}" if rng.random() < 0.5 else f"{letter}{y}.{d.month}.{d.day}"
    return d.isoformat()


def address_text(a: tuple, rng: random.Random) -> str:
    town, c, b, g = a
    r = rng.random()
    if r < 0.4:
        return f"{town}{c}-{b}-{g}"
    if r < 0.7:
        return f"{town}{KANSUJI[c]}丁目{b}番地{g}号" if c < 10 else f"{town}{c}丁目{b}番{g}号"
    return jaconv.h2z(f"{town}{c}-{b}-{g}", digit=True, ascii=True)


def name_forms(k: Kid, rng: random.Random, *, kana_col: bool) -> tuple[str, str]:
    """(氏名, 氏名カナ) with the usual variation between systems."""
    r = rng.random()
    name = k.name if rng.random() < 0.8 else k.name.replace(" ", rng.choice(["", "　"]))
    kana = k.kana
    if r < 0.12:
        name = variant(name, rng)
    elif r < 0.16:
        name = k.kana if rng.random() < 0.5 else jaconv.kata2hira(k.kana)  # kana only
    elif r < 0.19:
        name = f"{k.family[2].capitalize()} {k.given[2].capitalize()}"  # romaji
        if rng.random() < 0.3:
            name = name.upper()
    elif r < 0.22:
        name = typo(name, rng)
    if kana_col:
        s = rng.random()
        if s < 0.3:
            kana = jaconv.z2h(kana, kana=True)
        elif s < 0.4:
            kana = jaconv.kata2hira(kana)
        elif s < 0.45:
            kana = ""
    return name, kana if kana_col else ""


def outsider(rng: random.Random) -> Kid:
    fam, sex = rng.choice(FAMILY), rng.choice("MF")
    given = rng.choice(GIVEN_M if sex == "M" else GIVEN_F)
    dob = date(1975, 1, 1) + timedelta(days=rng.randint(0, 365 * 48))
    addr = (rng.choice(TOWNS), rng.randint(1, 9), rng.randint(1, 30), rng.randint(1, 20))
    return Kid("", f"{rng.randint(10**9, 10**10 - 1)}", fam, given, dob, sex, addr, "", 0, "", 0)


# -- files ------------------------------------------------------------------------


def _write(path: Path, header: list[str], rows: list[list], encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="", errors="strict") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def generate(out: Path, n_children: int = 20000, seed: int = 7, consent_rate: float = 0.85) -> dict:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    kids = make_children(n_children, rng)
    for k in kids:
        k.consented = rng.random() < consent_rate
    by_no = {k.student_no: k for k in kids}
    truth: dict[str, list] = {}

    roster = [[k.student_no, k.atena_no, k.name, k.kana, k.dob.isoformat(), "男" if k.sex == "M" else "女",
               f"{k.address[0]}{k.address[1]}-{k.address[2]}-{k.address[3]}", k.school, "", k.grade, k.klass, k.no]
              for k in kids]
    _write(out / "roster.csv", ["児童生徒番号", "宛名番号", "氏名", "氏名カナ", "生年月日", "性別", "住所", "学校コード", "学校名",
                                "学年", "組", "出席番号"], roster, "utf-8-sig")

    def number(k: Kid, attr: str) -> str:
        value = getattr(k, attr)
        if rng.random() < 0.01:  # stale or mistyped number: another child's
            return getattr(rng.choice(kids), attr)
        if rng.random() < 0.3:
            value = jaconv.h2z(value, digit=True, ascii=True)
        return value

    def dob(k: Kid) -> str:
        d = k.dob
        if rng.random() < 0.015:  # a mistyped day
            d = d.replace(day=min(28, max(1, d.day + rng.choice([-1, 1, 10]))))
        return date_text(d, rng)

    def people(rate: float, extra: float):
        chosen = [k for k in kids if rng.random() < rate]
        chosen += [outsider(rng) for _ in range(int(len(chosen) * extra))]
        rng.shuffle(chosen)
        return chosen

    sources: dict[str, tuple[list[str], list[list], list, str]] = {}

    rows, t = [], []
    for k in people(1.0, 0.05):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no"), "H" + k.atena_no[:6], nm, kn, dob(k), rng.choice(["男", "M", "1"]) if k.sex == "M" else rng.choice(["女", "F", "2"]),
                     "子", address_text(k.address, rng), rng.choice(["", "転入", "出生"]), date_text(date(2024, rng.randint(1, 12), rng.randint(1, 28)), rng)])
        t.append(k.student_no or None)
    sources["juki"] = (["宛名番号", "世帯番号", "氏名", "氏名カナ", "生年月日", "性別", "続柄", "住所", "異動事由", "異動日"], rows, t, "cp932")

    rows, t = [], []
    for k in people(0.7, 0.02):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no") if rng.random() < 0.9 else "", nm, kn, dob(k), "", rng.choice(["支給中", "支給停止"]),
                     date_text(date(2025, rng.randint(1, 12), rng.randint(1, 28)), rng)])
        t.append(k.student_no or None)
    sources["jidou_teate"] = (["宛名番号", "氏名", "氏名カナ", "生年月日", "受給者宛名番号", "支給状況", "認定日"], rows, t, "utf-8")

    rows, t = [], []
    for k in people(0.1, 0.05):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no") if rng.random() < 0.7 else "", nm, kn, dob(k), "",
                     rng.choice(["全部支給", "一部支給", "全部停止"]), date_text(date(2025, 4, 1), rng)])
        t.append(k.student_no or None)
    sources["jidou_fuyou"] = (["宛名番号", "氏名", "氏名カナ", "生年月日", "受給者宛名番号", "支給区分", "認定日"], rows, t, "cp932")

    rows, t = [], []
    for k in people(0.15, 0.0):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no") if rng.random() < 0.5 else "", nm, kn, dob(k), k.school,
                     rng.choice(["要保護", "準要保護"]), date_text(date(2025, 4, 1), rng)])
        t.append(k.student_no or None)
    sources["shugaku_enjo"] = (["宛名番号", "氏名", "氏名カナ", "生年月日", "学校コード", "認定区分", "認定日"], rows, t, "utf-8-sig")

    rows, t = [], []
    for k in people(0.03, 0.1):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no") if rng.random() < 0.6 else "", nm, kn, dob(k), date_text(date(2024, 10, 1), rng), ""])
        t.append(k.student_no or None)
    sources["seikatsu_hogo"] = (["宛名番号", "氏名", "氏名カナ", "生年月日", "保護開始日", "保護廃止日"], rows, t, "cp932")

    rows, t = [], []
    for k in people(0.08, 0.0):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "student_no"), nm, kn, k.school, rng.randint(1, 6), rng.randint(1, 6) * 4500, "2026-03-31"])
        t.append(k.student_no)
    sources["kyushoku"] = (["児童生徒番号", "氏名", "氏名カナ", "学校コード", "滞納月数", "滞納額", "基準日"], rows, t, "cp932")

    rows, t = [], []
    months = ["2025-04", "R7.5", "2025-06", "令和7年7月", "2025-09", "2025/10", "R7.11"]
    for k in kids:
        for m in months:
            nm, _ = name_forms(k, rng, kana_col=False)
            absent = rng.choices([0, 1, 2, 5, 12], [0.6, 0.2, 0.1, 0.07, 0.03])[0]
            rows.append([number(k, "student_no"), nm, k.school, k.grade, k.klass, m, 20, absent, rng.randint(0, 2),
                         rng.randint(0, 1), rng.randint(0, 3)])
            t.append(k.student_no)
    sources["attendance"] = (["児童生徒番号", "氏名", "学校コード", "学年", "組", "対象年月", "授業日数", "欠席日数", "遅刻日数",
                              "早退日数", "保健室来室回数"], rows, t, "utf-8")

    rows, t = [], []
    for k in kids:
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "student_no"), nm, kn, dob(k), date_text(date(2025, 5, rng.randint(1, 28)), rng),
                     round(rng.uniform(110, 165), 1), round(rng.uniform(18, 55), 1), rng.choice([0, 0, 0, 1, 2]),
                     rng.choice(["受診"] * 9 + ["未受診"])])
        t.append(k.student_no)
    sources["health"] = (["児童生徒番号", "氏名", "氏名カナ", "生年月日", "受診日", "身長", "体重", "未処置う歯数", "受診状況"], rows, t, "cp932")

    rows, t = [], []
    for k in people(0.1, 0.0):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([number(k, "atena_no") if rng.random() < 0.8 else "", nm, kn, dob(k), rng.choice(["4か月", "1歳6か月", "3歳"]),
                     rng.choice(["受診", "受診", "未受診"])])
        t.append(k.student_no)
    sources["boshi"] = (["宛名番号", "氏名", "氏名カナ", "生年月日", "健診種別", "受診状況"], rows, t, "utf-8")

    rows, t = [], []
    for k in people(0.015, 0.2):
        nm, kn = name_forms(k, rng, kana_col=True)
        rows.append([nm, kn, dob(k), rng.choice(["男", "女"]) if not k.student_no else ("男" if k.sex == "M" else "女"),
                     address_text(k.address, rng), "相談", "学校での様子について情報提供"])
        t.append(k.student_no or None)
    sources["external"] = (["氏名", "氏名カナ", "生年月日", "性別", "住所", "情報区分", "内容"], rows, t, "utf-8")

    for key, (header, rows, t, enc) in sources.items():
        _write(out / f"{key}.csv", header, rows, enc)
        truth[key] = t
    meta = {"truth": truth, "consented": [k.student_no for k in kids if k.consented],
            "children": len(kids), "rows": sum(len(v) for v in truth.values())}
    (out / "truth.json").write_text(json.dumps(meta, ensure_ascii=False))
    assert all(s in by_no for s in meta["consented"])
    return meta
