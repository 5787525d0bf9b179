"""Demo catalogue: about twenty fictional local services, campaigns and inbox messages."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select

from portal.auth.principal import Principal
from portal.orm import utcnow
from resources import campaigns as camp
from resources import service as catalogue
from resources.models import Channel, Delivery, ServiceStatus
from resources.service import ScheduleData, ServiceData

W = "WEEKLY"
M = "MONTHLY"

# (name ja, name en, categories, (min, max) months, schedules, free, district, description ja, description en, languages)
SERVICES = [
    ("ひだまり子ども食堂", "Hidamari Children's Cafeteria", ["childrens_cafeteria"], (None, None),
     [(W, "WE", 17, 19)], True, "ひだまり", "毎週水曜日の夕方、地域のボランティアと温かい夕ごはんを食べます。子どもは無料、大人300円。",
     "Warm dinner with local volunteers every Wednesday evening. Free for children, 300 yen for adults.", ["ja", "en"]),
    ("こもれび こども食堂", "Komorebi Kids' Kitchen", ["childrens_cafeteria"], (None, None),
     [(M, "2SA,4SA", 11, 14)], True, "こもれび", "第2・第4土曜日のお昼ごはん。宿題を持ってきてもOK。",
     "Lunch on the 2nd and 4th Saturday. Bring your homework if you like.", ["ja"]),
    ("みまもり市児童館", "Mimamori City Children's Hall", ["after_school", "play_and_sport"], (0, 18 * 12 + 11),
     [(W, "TU,WE,TH,FR,SA", 10, 18)], True, "", "0歳から18歳まで自由に遊べる児童館。卓球、図書コーナー、乳幼児のひろばがあります。",
     "A children's hall for ages 0 to 18: table tennis, a reading corner and a baby room.", ["ja", "en"]),
    ("ひだまり放課後児童クラブ", "Hidamari After-School Club", ["after_school"], (72, 155),
     [(W, "MO,TU,WE,TH,FR", 14, 19)], False, "ひだまり", "保護者が働いている小学生の放課後の居場所（学童保育）。申込みが必要です。",
     "After-school care for elementary children whose parents work. Registration needed.", ["ja"]),
    ("あおぞら放課後子ども教室", "Aozora After-School Classroom", ["after_school", "study_support"], (72, 155),
     [(W, "TU,TH", 15, 17)], True, "あおぞら", "地域の大人と昔遊びや工作。誰でも参加できます。",
     "Traditional games and crafts with local adults. Anyone can join.", ["ja"]),
    ("せせらぎ学習室", "Seseragi Study Room", ["study_support"], (144, 191),
     [(W, "MO,TH", 18, 20)], True, "せせらぎ", "中学生のための無料の学習支援。大学生が一緒に勉強します。",
     "Free study support for junior high students with university volunteers.", ["ja", "en", "pt"]),
    ("まなびの広場（小学生）", "Learning Corner for Elementary Children", ["study_support"], (72, 155),
     [(W, "SA", 10, 12)], True, "", "土曜日の午前中、宿題や計算の練習を手伝います。",
     "Help with homework and arithmetic on Saturday mornings.", ["ja"]),
    ("こども相談ダイヤル", "Children's Helpline", ["counselling"], (72, 18 * 12 + 11),
     [(W, "MO,TU,WE,TH,FR,SA,SU", 16, 21)], True, "", "なやみごとを話せる電話。名前を言わなくても大丈夫です。",
     "A phone line to talk about anything that worries you. You don't have to give your name.", ["ja"]),
    ("家庭児童相談室", "Family and Child Consultation Office", ["counselling", "childcare"], (None, None),
     [(W, "MO,TU,WE,TH,FR", 9, 17)], True, "", "子育てや家庭のことについて、相談員が一緒に考えます。秘密は守られます。",
     "Counsellors help you think through parenting and family worries, in confidence.", ["ja", "en"]),
    ("スクールカウンセラー相談", "School Counsellor", ["counselling"], (72, 191),
     [(W, "WE", 13, 17)], True, "", "各学校にいるカウンセラーに、子どもも保護者も相談できます。",
     "Children and parents can talk to the counsellor at every school.", ["ja"]),
    ("こども医療費助成", "Children's Medical Expenses Subsidy", ["money", "health"], (0, 18 * 12 + 11),
     [], True, "", "18歳までの子どもの通院・入院の自己負担を助成します。",
     "Help with medical costs for children up to 18.", ["ja", "en", "zh", "ko", "pt", "vi"]),
    ("就学援助", "School Expenses Assistance", ["money"], (72, 191),
     [], True, "", "給食費や学用品費などを援助します。申請は学校か教育委員会へ。",
     "Help with school lunches and supplies. Apply at school or the education office.", ["ja", "en", "pt", "vi", "tl"]),
    ("児童手当の窓口", "Child Allowance Desk", ["money"], (None, None),
     [(W, "MO,TU,WE,TH,FR", 9, 17)], True, "", "児童手当や児童扶養手当の相談と申請。",
     "Advice and applications for child allowances.", ["ja", "en"]),
    ("発達相談センター", "Child Development Centre", ["disability", "counselling"], (0, 191),
     [(W, "MO,WE,FR", 9, 16)], True, "", "ことばや発達が気になるときに相談できます。予約制。",
     "Advice when you have questions about speech or development. By appointment.", ["ja"]),
    ("放課後等デイサービス すまいる", "Smile After-School Day Service", ["disability", "after_school"], (72, 18 * 12 + 11),
     [(W, "MO,TU,WE,TH,FR", 14, 18)], False, "こもれび", "障がいのある子どもの放課後の居場所。受給者証が必要です。",
     "After-school place for children with disabilities (certificate needed).", ["ja"]),
    ("ヤングケアラー相談窓口", "Young Carers Support", ["young_carers", "counselling"], (72, 18 * 12 + 11),
     [(W, "MO,TU,WE,TH,FR", 10, 18)], True, "", "家族のお世話や家事をしている子どもの相談窓口。LINEでも相談できます。",
     "For children who look after family members or do a lot of housework. Also on LINE.", ["ja"]),
    ("ケアラーズカフェ", "Young Carers' Café", ["young_carers"], (144, 18 * 12 + 11),
     [(M, "1SU", 13, 15)], True, "", "同じような経験をした仲間とおしゃべりできるカフェ。",
     "A café to chat with others who care for someone at home.", ["ja"]),
    ("子育て支援センター ぽかぽか", "Pokapoka Parenting Centre", ["childcare"], (0, 6 * 12 + 11),
     [(W, "MO,TU,WE,TH,FR,SA", 9, 16)], True, "ひだまり", "未就学の子と保護者のひろば。育児相談もできます。",
     "Drop-in space and advice for parents of preschool children.", ["ja", "en"]),
    ("にほんご教室 こんにちは", "Konnichiwa Japanese Class", ["language_support", "study_support"], (72, 191),
     [(W, "SA", 13, 15)], True, "", "外国にルーツのある子どものための日本語と教科の学習。",
     "Japanese and school subjects for children with roots abroad.", ["ja", "en", "pt", "vi", "tl", "zh"]),
    ("みまもりスポーツ少年団", "Mimamori Youth Sports Club", ["play_and_sport"], (72, 155),
     [(W, "SA,SU", 9, 12)], False, "", "サッカーとバスケットボール。道具の貸し出しがあります。",
     "Football and basketball; equipment can be borrowed.", ["ja"]),
    ("保健センター 健康相談", "Health Centre Advice", ["health"], (None, None),
     [(W, "TU", 13, 16)], True, "", "保健師に子どもの健康や食事、睡眠のことを相談できます。",
     "Ask a public health nurse about your child's health, food or sleep.", ["ja", "en"]),
]


def load(session, ctx) -> None:
    coord = ctx.staff["coordinator"]
    actor = Principal(kind="staff", id=coord.id, role="coordinator")
    created = []
    for i, (ja, en, cats, (lo, hi), scheds, free, district, dja, den, langs) in enumerate(SERVICES):
        data = ServiceData(
            name_ja=ja, name_en=en, description_ja=dja, description_en=den, categories=cats,
            organization_name="みまもり市（架空）" if i % 3 else "NPO法人 みまもりネット（架空）",
            min_age_months=lo, max_age_months=hi, languages=langs, is_free=free,
            fees_ja="" if free else "月額 3,000円（減免あり）", fees_en="" if free else "3,000 yen a month (reductions available)",
            phone=f"0761-00-{1000 + i:04d}", url=f"https://example.invalid/mimamori/{i + 1}",
            location_name=ja, address=f"石川県みまもり市{district or 'ひだまり'}町{i % 5 + 1}-{i + 1}-1",
            district=district, accessibility_ja="車いす可・多目的トイレあり" if i % 2 == 0 else "",
            accessibility_en="Wheelchair access, accessible toilet" if i % 2 == 0 else "",
            schedules=[ScheduleData(f, d, time(a), time(b)) for f, d, a, b in scheds],
        )
        s = catalogue.save_service(session, actor, data)
        created.append(s)
        if i < len(SERVICES) - 1:
            catalogue.publish(session, actor, s)
    # One entry due for re-checking, one hidden (past the grace period), one left as a draft.
    today = catalogue._today()
    created[12].last_verified_on = today - timedelta(days=200)
    created[19].last_verified_on = today - timedelta(days=240)
    assert created[-1].status == ServiceStatus.draft
    session.flush()

    welcome = camp.save_campaign(session, actor, camp.CampaignData(
        title_ja="新学期：地域の居場所と相談先のご案内", title_en="New school year: local places and people to talk to",
        body_ja="すべてのご家庭に、市内の子どもの居場所と相談先をお知らせします。\n\n困ったときは、どうぞ気軽に使ってください。",
        body_en="We are sending every family a list of places for children and people to talk to in our city.\n\nPlease use them whenever you need.",
        service_ids=[created[i].id for i in (0, 2, 5, 7, 8, 15)], audience="all"))
    camp.send_now(session, actor, welcome, utcnow() - timedelta(days=10))
    teens = camp.save_campaign(session, actor, camp.CampaignData(
        title_ja="中学生のための学習室・相談先", title_en="Study rooms and support for junior high students",
        body_ja="中学生とご家庭のための情報です。", body_en="Information for junior high students and their families.",
        service_ids=[created[i].id for i in (5, 15, 16)], audience="grades", grades=[7, 8, 9]))
    camp.send_now(session, actor, teens, utcnow() - timedelta(days=3))
    camp.save_campaign(session, actor, camp.CampaignData(
        title_ja="夏休みの子ども食堂", title_en="Children's cafeterias in the summer holidays",
        body_ja="夏休み中も開いている子ども食堂です。", body_en="Children's cafeterias open during the summer holidays.",
        service_ids=[created[0].id, created[1].id], audience="ages", min_age=6, max_age=12))
    # The demo guardian has read the first message; e-mails stay queued for `flask resources send-due`.
    demo_guardian = next(g for g in ctx.guardians if g.password_hash)
    first = session.scalar(select(Delivery).where(
        Delivery.campaign_id == welcome.id, Delivery.guardian_id == demo_guardian.id, Delivery.channel == Channel.inbox))
    if first is not None:
        first.read_at = utcnow() - timedelta(days=9)
    session.flush()
