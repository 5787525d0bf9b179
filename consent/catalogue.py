"""The three purposes the demo municipality ships, with their first consent texts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from consent.models import ConsentPurpose
from consent.service import current_version, publish_version, purpose_by_code
from portal.auth.principal import SYSTEM

DEMO_PURPOSES: list[dict] = [
    {
        "code": "data_linkage",
        "sort_order": 10,
        "title": {
            "ja": "行政データの連携（見守りのための名寄せ）",
            "en": "Linking administrative records (to notice who may need support)",
        },
        "summary": {
            "ja": "市がすでに持っている記録（出欠、健康診断、給食費、手当・援助の状況など）をお子さんの学校の記録とつなぎ、"
            "支援が必要かもしれないお子さんに早く気づくために使います。結果は学級担任と学校の支援チームだけが見ます。",
            "en": "The city links records it already holds (attendance, health checks, school-lunch fees, allowances "
            "and assistance) to your child's school record, to notice early when a child may need support. Only "
            "the homeroom teacher and the school's support team see the result.",
        },
        "child_summary": {
            "ja": "市や学校が持っているあなたの記録（休んだ日、健康診断など）をつないで、困っているかもしれないときに"
            "先生が早く気づけるようにします。見るのは担任の先生と学校の支援チームだけです。",
            "en": "The city and your school put together records about you (days you missed, health checks and so "
            "on), so your teachers can notice early if things might be hard. Only your homeroom teacher and the "
            "school's support team see it.",
        },
        "data_items": {
            "ja": ["出欠（欠席・遅刻・早退・保健室来室）", "学校健康診断の受診状況", "給食費の滞納月数", "児童手当・児童扶養手当・就学援助・生活保護の受給状況", "乳幼児健診の受診状況"],
            "en": ["Attendance (absence, lateness, early leave, nurse's-office visits)", "School health checks attended", "Months of unpaid school-lunch fees", "Child allowance, single-parent allowance, school-cost assistance, public assistance status", "Infant health checks attended"],
        },
        "sources": {
            "ja": ["学校事務システム", "住民記録", "子育て支援課", "福祉課", "母子保健"],
            "en": ["School affairs system", "Resident register", "Child-rearing support division", "Welfare division", "Maternal and child health"],
        },
        "users": {
            "ja": ["学級担任", "管理職・校内委員会", "スクールカウンセラー", "スクールソーシャルワーカー"],
            "en": ["Homeroom teacher", "School lead and school committee", "School counsellor", "School social worker"],
        },
        "retention": {
            "ja": "在学中。同意を撤回したときは直ちに削除します。",
            "en": "While the child is at school. Deleted at once when consent is withdrawn.",
        },
        "texts": {
            "ja": ("行政データの連携についての同意",
                   "みまもり市（架空）は、お子さんが困りごとを抱えているときに早く気づき支援につなぐため、市が保有する記録とお子さんの学校の記録を連携します。\n\n"
                   "連携する記録：出欠、学校健康診断、給食費、児童手当・児童扶養手当・就学援助・生活保護の受給状況、乳幼児健診。\n\n"
                   "連携の結果は、支援が必要かもしれないことを知らせる「気づき」として学級担任と学校の支援チームにだけ示されます。判断は必ず人が行います。\n\n"
                   "同意はいつでも、このページから同じ手順で撤回できます。撤回すると直ちに連携の対象から外れ、連携した記録は削除されます。",
                   "あなたの休んだ日や健康診断などの記録を、学校の記録とつなぎます。困っているかもしれないとき、先生が早く気づくためです。\n\n"
                   "決めるのは人で、コンピューターではありません。いつでもこのページでやめられます。やめたら、つないだ記録は消します。"),
            "en": ("Consent to linking administrative records",
                   "Mimamori City (fictional) links records the city holds with your child's school record, to notice early when a child is struggling and connect the family with support.\n\n"
                   "Records linked: attendance, school health checks, school-lunch fees, child allowance, single-parent allowance, school-cost assistance, public assistance, infant health checks.\n\n"
                   "The result is shown only to the homeroom teacher and the school's support team, as a reason to look. A person always decides.\n\n"
                   "You can withdraw at any time on this page, in the same steps. Your child then leaves the linkage at once and the linked records are deleted.",
                   "We put together records about you, like days you missed school and health checks, with your school record, so teachers can notice early if things are hard.\n\n"
                   "People decide, not a computer. You can stop at any time on this page. If you stop, we delete the records we put together."),
        },
    },
    {
        "code": "wellbeing_survey",
        "sort_order": 20,
        "title": {"ja": "こころと生活のアンケート", "en": "Wellbeing check-ins"},
        "summary": {
            "ja": "お子さんが短いアンケート（気分、睡眠、友だち関係など）に答え、学級担任が変化に気づけるようにします。",
            "en": "Your child answers short check-ins (mood, sleep, friendships), so the homeroom teacher can notice changes.",
        },
        "child_summary": {
            "ja": "ときどき、気分やねむり、友だちのことを聞く短いアンケートに答えます。担任の先生が、あなたの変化に気づけるようにするためです。",
            "en": "Now and then you answer a short check-in about your mood, sleep and friends, so your homeroom teacher can notice if something changes.",
        },
        "data_items": {"ja": ["アンケートの回答と得点", "自由記述（暗号化して保存）"], "en": ["Check-in answers and scores", "Free text (stored encrypted)"]},
        "sources": {"ja": ["本人の回答"], "en": ["The child's own answers"]},
        "users": {"ja": ["学級担任", "スクールカウンセラー"], "en": ["Homeroom teacher", "School counsellor"]},
        "retention": {"ja": "回答から3年。同意を撤回したときは直ちに削除します。", "en": "Three years from the answer. Deleted at once when consent is withdrawn."},
        "texts": {
            "ja": ("こころと生活のアンケートについての同意",
                   "お子さんは学校の端末や家庭から、気分・睡眠・友だち関係などについての短いアンケートに答えます。回答は学級担任とスクールカウンセラーが、変化に気づくために見ます。\n\n"
                   "同意はいつでも、このページから同じ手順で撤回できます。撤回すると直ちにアンケートの対象から外れ、回答は削除されます。",
                   "気分やねむり、友だちのことを聞く短いアンケートに答えます。答えは担任の先生とカウンセラーの先生が見ます。\n\n答えたくない質問はとばせます。いつでもこのページでやめられます。"),
            "en": ("Consent to wellbeing check-ins",
                   "Your child answers short check-ins about mood, sleep and friendships at school or at home. The homeroom teacher and the school counsellor read the answers to notice changes.\n\n"
                   "You can withdraw at any time on this page, in the same steps. Your child then receives no more check-ins and the answers are deleted.",
                   "You answer short check-ins about your mood, sleep and friends. Your homeroom teacher and the counsellor read them.\n\nYou can skip any question. You can stop at any time on this page."),
        },
    },
    {
        "code": "share_with_partners",
        "sort_order": 30,
        "title": {"ja": "支援機関との情報共有", "en": "Sharing with support partners"},
        "summary": {
            "ja": "学校の支援会議で必要と判断したとき、支援計画に必要な範囲の情報を、市の子ども家庭支援の窓口や協力機関と共有します。",
            "en": "When the school's case meeting decides it is needed, the information a support plan needs is shared with the city's child and family support desk and partner organisations.",
        },
        "child_summary": {
            "ja": "学校の先生たちが話し合って必要だと決めたとき、あなたを手伝ってくれる市の窓口などに、必要なことだけを伝えます。",
            "en": "If your teachers meet and decide it would help, they tell the city's support desk or a partner only what is needed to help you.",
        },
        "data_items": {"ja": ["支援計画", "紹介状の内容"], "en": ["Support plan", "Referral letter"]},
        "sources": {"ja": ["学校の支援会議"], "en": ["The school's case meeting"]},
        "users": {"ja": ["子ども家庭支援課", "協力機関"], "en": ["Child and family support desk", "Partner organisations"]},
        "retention": {"ja": "支援の終了から5年。同意を撤回したときは直ちに共有を止めます。", "en": "Five years after support ends. Sharing stops at once when consent is withdrawn."},
        "texts": {
            "ja": ("支援機関との情報共有についての同意",
                   "学校の支援会議で必要と判断したとき、支援計画と紹介に必要な範囲の情報を、市の子ども家庭支援の窓口や協力機関と共有します。共有した相手と日付は記録され、このポータルで確かめられます。\n\n"
                   "同意はいつでも、このページから同じ手順で撤回できます。",
                   "先生たちが必要だと決めたとき、あなたを手伝ってくれる人に、必要なことだけを伝えます。いつでもこのページでやめられます。"),
            "en": ("Consent to sharing with support partners",
                   "When the school's case meeting decides it is needed, the information needed for a support plan and referral is shared with the city's child and family support desk or partner organisations. Who received it and when is recorded and shown on this portal.\n\n"
                   "You can withdraw at any time on this page, in the same steps.",
                   "If your teachers decide it would help, they tell people who can help you only what is needed. You can stop at any time on this page."),
        },
    },
]

PURPOSE_FIELDS = ("title", "summary", "child_summary", "data_items", "sources", "users", "retention", "sort_order")


def ensure_purposes(session: Session, codes: tuple[str, ...] | None = None) -> dict[str, ConsentPurpose]:
    """Create the demo purposes (and publish their first version) where missing."""
    out: dict[str, ConsentPurpose] = {}
    for spec in DEMO_PURPOSES:
        if codes is not None and spec["code"] not in codes:
            continue
        purpose = purpose_by_code(session, spec["code"])
        if purpose is None:
            purpose = ConsentPurpose(code=spec["code"], **{k: spec[k] for k in PURPOSE_FIELDS})
            session.add(purpose)
            session.flush()
        if current_version(session, purpose.id) is None:
            publish_version(session, SYSTEM, purpose, spec["texts"])
        out[purpose.code] = purpose
    return out
