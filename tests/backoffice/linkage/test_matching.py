"""Matching without a database: Fellegi-Sunter weights estimated from the
data, blocking, thresholds, twins and siblings."""

from __future__ import annotations

import random
from datetime import date, timedelta

from backoffice.linkage import matching as m

FAMILIES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"]
FAMILY_KANA = ["サトウ", "スズキ", "タカハシ", "タナカ", "イトウ", "ワタナベ", "ヤマモト", "ナカムラ", "コバヤシ", "カトウ"]
GIVEN = ["太郎", "花子", "健", "陽菜", "翔", "結衣", "蓮", "葵", "湊", "凛", "大和", "美咲"]
GIVEN_KANA = ["タロウ", "ハナコ", "ケン", "ヒナ", "ショウ", "ユイ", "レン", "アオイ", "ミナト", "リン", "ヤマト", "ミサキ"]


def roster(n: int, seed: int = 3) -> dict[int, dict]:
    rng = random.Random(seed)
    out = {}
    for i in range(1, n + 1):
        f, g = rng.randrange(len(FAMILIES)), rng.randrange(len(GIVEN))
        out[i] = {"name": f"{FAMILIES[f]} {GIVEN[g]}", "kana": f"{FAMILY_KANA[f]} {GIVEN_KANA[g]}",
                  "birth_date": date(2012, 4, 2) + timedelta(days=rng.randrange(365 * 9)),
                  "sex": rng.choice("MF"), "address": f"みまもり町{rng.randint(1, 9)}-{rng.randint(1, 30)}",
                  "student_no": f"S{i:05d}", "atena_no": f"A{i:05d}"}
    return out


def index_of(children: dict[int, dict], consented: set[int] | None = None) -> m.ChildIndex:
    people = {cid: m.person(**c) for cid, c in children.items()}
    return m.ChildIndex(people, set(children) if consented is None else consented)


def test_m_is_estimated_from_the_pairs_the_numbers_link():
    children = roster(400)
    index = index_of(children)
    records = [m.person(**{**c, "student_no": ""}) for c in list(children.values())[:200]]
    params = m.fit(records, index)
    assert params.m_from == "id_pairs" and params.pairs_used == 200
    # these records agree with their child on every field: m of "exact" is near 1
    assert params.m["dob"][2] > 0.85 and params.m["kanji"][3] > 0.85
    # and u (random pairs) of an exact birth date is tiny
    assert params.u["dob"][2] < 0.01
    w = params.weights()
    assert w["dob"][2] > 5 and w["dob"][0] < 0


def test_m_is_estimated_by_em_when_the_file_has_no_numbers():
    children = roster(400)
    index = index_of(children)
    records = [m.person(name=c["name"], kana=c["kana"], birth_date=c["birth_date"], sex=c["sex"])
               for c in list(children.values())[:200]]
    params = m.fit(records, index)
    assert params.m_from == "em"
    assert params.m["dob"][2] > 0.8 and params.m["reading"][3] > 0.8


def test_em_recovers_the_agreement_rates_of_matches():
    rng = random.Random(5)
    u = {f: list(v) for f, v in m.DEFAULT_U.items()}
    pairs = []
    for _ in range(600):  # true matches: exact on name 70 %, close 30 %
        pairs.append({"kanji": 3 if rng.random() < 0.7 else 2, "reading": 3, "dob": 2, "sex": 1, "address": 2})
    for _ in range(3000):  # non-matches, drawn from u
        pairs.append({f: rng.choices(range(m.LEVELS[f]), u[f])[0] for f in m.FIELDS})
    est = m.estimate_m_em(pairs, u)
    assert abs(est["kanji"][3] - 0.7) < 0.08 and abs(est["kanji"][2] - 0.3) < 0.08


def test_blocking_compares_a_record_with_few_children():
    children = roster(3000)
    index = index_of(children)
    c = children[17]
    rec = m.person(name=c["name"], kana=c["kana"], birth_date=c["birth_date"])
    block = index.block(rec)
    assert 17 in block
    assert len(block) < 300  # never the whole roster
    # every candidate shares a blocking key with the record
    keys = set(m.ChildIndex._keys(rec))
    assert all(keys & set(m.ChildIndex._keys(index.children[cid])) for cid in block)


def twins_index(consented: set[int]) -> m.ChildIndex:
    base = {"birth_date": date(2017, 5, 3), "sex": "F", "address": "みまもり町1-2-3"}
    children = {
        1: {**base, "name": "髙橋 花子", "kana": "タカハシ ハナコ", "student_no": "S1"},
        2: {**base, "name": "髙橋 桃子", "kana": "タカハシ モモコ", "student_no": "S2"},
        3: {**base, "name": "髙橋 陽菜", "kana": "タカハシ ヒナ", "birth_date": date(2018, 5, 4), "student_no": "S3"},
    }
    others = roster(500, seed=9)
    return index_of({**children, **{i + 10: c for i, c in others.items()}}, consented)


def test_twins_and_siblings_are_never_merged():
    index = twins_index({1, 2, 3})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-9.0))
    for cid, name, kana in ((1, "高橋花子", "たかはし はなこ"), (2, "高橋 桃子", "ﾀｶﾊｼ ﾓﾓｺ")):
        out = matcher.match(m.person(name=name, kana=kana, birth_date=date(2017, 5, 3), sex="F",
                                     address="みまもり町一丁目2番地3号"))
        assert (out.kind, out.child_id) == ("link", cid)
    # the sibling born a year and a day later: same family name and address
    out = matcher.match(m.person(name="高橋 陽菜", birth_date=date(2018, 5, 4), address="みまもり町1-2-3"))
    assert (out.kind, out.child_id) == ("link", 3)
    # a record naming only the family: none of the three
    out = matcher.match(m.person(name="高橋", kana="タカハシ", birth_date=date(2017, 5, 3), address="みまもり町1-2-3"))
    assert out.kind == "drop"


def test_a_record_about_a_non_consented_twin_is_dropped_not_given_to_the_other():
    index = twins_index({1, 3})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-9.0))
    out = matcher.match(m.person(name="髙橋 桃子", birth_date=date(2017, 5, 3), sex="F"))
    assert (out.kind, out.reason) == ("drop", "not_consented")


def test_thresholds_link_review_and_drop():
    index = twins_index({1, 2, 3})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-9.0))
    sure = matcher.match(m.person(name="髙橋 花子", kana="タカハシ ハナコ", birth_date=date(2017, 5, 3), sex="F"))
    assert sure.kind == "link" and sure.probability >= m.LINK_PROBABILITY
    grey = matcher.match(m.person(name="たかはし はなこ", birth_date=date(2017, 5, 13)))
    assert grey.kind == "review" and m.REVIEW_PROBABILITY <= grey.probability < m.LINK_PROBABILITY
    assert grey.candidates[0].agreement()["dob"] == "close"
    none = matcher.match(m.person(name="田中 一郎", birth_date=date(2001, 1, 1)))
    assert (none.kind, none.reason) == ("drop", "no_match")


def test_a_stale_number_is_checked_against_name_and_birth_date():
    index = twins_index({1, 2, 3})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-9.0))
    # S2 is 桃子's number, the record is about 花子
    out = matcher.match(m.person(name="髙橋 花子", kana="タカハシ ハナコ", birth_date=date(2017, 5, 3), student_no="S2"))
    assert out.stale_number and out.child_id == 1 and out.method == "probabilistic"


def test_a_number_alone_links_unless_the_placement_contradicts_it():
    child = m.person(name="山田 太郎", birth_date=date(2017, 8, 1), student_no="S9", school="E001", grade=3)
    index = m.ChildIndex({9: child}, {9})
    matcher = m.Matcher(index, m.Parameters())
    assert matcher.match(m.person(student_no="S9")).kind == "link"
    assert matcher.match(m.person(student_no="S9", school="E001", grade=3)).kind == "link"
    assert matcher.match(m.person(student_no="S9", school="E002", grade=5)).kind == "drop"


def test_a_twins_number_on_the_other_twins_row_is_not_trusted_on_kanji_alone():
    """Attendance: no kana, no birth date; the school, grade and class are
    the twins' own. The number names 桃子, the row is 花子's."""
    base = {"birth_date": date(2017, 5, 3), "sex": "F", "school": "E001", "grade": 3, "klass": "1"}
    index = m.ChildIndex({1: m.person(name="髙橋 花子", kana="タカハシ ハナコ", student_no="S1", **base),
                          2: m.person(name="髙橋 桃子", kana="タカハシ モモコ", student_no="S2", **base)}, {1, 2})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-9.0))
    out = matcher.match(m.person(name="高橋 花子", student_no="S2", school="E001", grade=3, klass="1"))
    assert out.child_id == 1 and out.stale_number
    # a typo in the name with the right number still links by the number
    out = matcher.match(m.person(name="高橋 花美", student_no="S1", school="E001", grade=3, klass="1"))
    assert (out.kind, out.method, out.child_id) == ("link", "student_no", 1)
