# ruff: noqa: RUF001  (Cyrillic and Romanian text is the point of this file)
"""The templates every fresh installation starts with: each message in en, uk, ru and ro.

Seeded by migration 0003 (existing templates are never overwritten); admins change them
through ``PUT /v1/templates/{event_type}/{language}``. Beneficiary texts are short SMS;
staff texts have an e-mail subject. Referrals to sensitive services (counter-trafficking,
protection) are named neutrally in beneficiaries' messages: a phone is not a private place.
"""

from __future__ import annotations

from typing import NamedTuple


class DefaultTemplate(NamedTuple):
    subject: str | None
    body: str


LANGUAGES = ("en", "uk", "ru", "ro")

# --- snippets ------------------------------------------------------------------------------

_SERVICE = {
    "en": '{% set service = {"medical": "medical care", "legal": "legal aid", '
    '"psychosocial": "psychosocial support", "employment": "employment support", '
    '"voluntary_return": "voluntary return assistance", "shelter": "shelter"}'
    '.get(service_type, "support services") if not sensitive else "support services" %}',
    "uk": '{% set service = {"medical": "медичної допомоги", "legal": "правової допомоги", '
    '"psychosocial": "психосоціальної підтримки", "employment": "допомоги з працевлаштуванням", '
    '"voluntary_return": "допомоги з добровільним поверненням", "shelter": "житла"}'
    '.get(service_type, "підтримки") if not sensitive else "підтримки" %}',
    "ru": '{% set service = {"medical": "медицинской помощи", "legal": "юридической помощи", '
    '"psychosocial": "психосоциальной поддержки", "employment": "помощи в трудоустройстве", '
    '"voluntary_return": "помощи в добровольном возвращении", "shelter": "жилья"}'
    '.get(service_type, "поддержки") if not sensitive else "поддержки" %}',
    "ro": '{% set service = {"medical": "asistență medicală", "legal": "asistență juridică", '
    '"psychosocial": "sprijin psihosocial", "employment": "sprijin pentru angajare", '
    '"voluntary_return": "asistență pentru întoarcerea voluntară", "shelter": "cazare"}'
    '.get(service_type, "servicii de sprijin") if not sensitive else "servicii de sprijin" %}',
}

_ITEMS = {
    "en": '{% set names = {"food": "food parcel", "hygiene": "hygiene kit", '
    '"non_food_item": "household items", "shelter_material": "shelter materials", '
    '"medication": "medication"} %}',
    "uk": '{% set names = {"food": "продуктовий набір", "hygiene": "гігієнічний набір", '
    '"non_food_item": "побутові речі", "shelter_material": "матеріали для житла", '
    '"medication": "ліки"} %}',
    "ru": '{% set names = {"food": "продуктовый набор", "hygiene": "гигиенический набор", '
    '"non_food_item": "бытовые вещи", "shelter_material": "материалы для жилья", '
    '"medication": "лекарства"} %}',
    "ro": '{% set names = {"food": "pachet alimentar", "hygiene": "set de igienă", '
    '"non_food_item": "articole de uz casnic", "shelter_material": "materiale pentru adăpost", '
    '"medication": "medicamente"} %}',
}

# One entry per SKU: a line split across batches arrives as several lines of the same SKU.
_LINES = (
    '{% for item in lines|groupby("sku") %}'
    '{{ item.list|sum(attribute="quantity") }} x '
    "{{ names.get(item.list[0].category, item.grouper) }}"
    "{{ ', ' if not loop.last }}{% endfor %}"
)
_LINES_INTL = _LINES.replace(" x ", " × ")
_DUE = '{% if due_at %}{{ due_at[:16]|replace("T", " ") }} UTC{% else %}—{% endif %}'
_CASE = {
    "en": "{% if case_number %} for case {{ case_number }}{% endif %}",
    "uk": "{% if case_number %} у справі {{ case_number }}{% endif %}",
    "ru": "{% if case_number %} по делу {{ case_number }}{% endif %}",
    "ro": "{% if case_number %} pentru dosarul {{ case_number }}{% endif %}",
}
_PROVIDER = {
    "en": "{% if provider_id %}\nProvider: {{ provider_id }}.{% endif %}",
    "uk": "{% if provider_id %}\nОрганізація: {{ provider_id }}.{% endif %}",
    "ru": "{% if provider_id %}\nОрганизация: {{ provider_id }}.{% endif %}",
    "ro": "{% if provider_id %}\nFurnizor: {{ provider_id }}.{% endif %}",
}
_DAYS_OF_COVER = {
    "en": "{% if days_of_cover is not none %}Days of cover left: {{ days_of_cover|round(1) }}.\n"
    "{% endif %}",
    "uk": "{% if days_of_cover is not none %}Запасу вистачить на днів: "
    "{{ days_of_cover|round(1) }}.\n{% endif %}",
    "ru": "{% if days_of_cover is not none %}Запаса хватит на дней: "
    "{{ days_of_cover|round(1) }}.\n{% endif %}",
    "ro": "{% if days_of_cover is not none %}Zile de acoperire rămase: "
    "{{ days_of_cover|round(1) }}.\n{% endif %}",
}

# Where to go, for referrals that are not sensitive (the organisation's public details).
_WHERE = {
    "en": "{% if provider_name and not sensitive %} to {{ provider_name }}"
    "{% if provider_address %}, {{ provider_address }}{% endif %}"
    "{% if provider_opening_hours %}, open {{ provider_opening_hours }}{% endif %}"
    "{% if provider_phone %}, tel. {{ provider_phone }}{% endif %}{% endif %}",
    "uk": "{% if provider_name and not sensitive %} до {{ provider_name }}"
    "{% if provider_address %}, {{ provider_address }}{% endif %}"
    "{% if provider_opening_hours %}, години роботи: {{ provider_opening_hours }}{% endif %}"
    "{% if provider_phone %}, тел. {{ provider_phone }}{% endif %}{% endif %}",
    "ru": "{% if provider_name and not sensitive %} в {{ provider_name }}"
    "{% if provider_address %}, {{ provider_address }}{% endif %}"
    "{% if provider_opening_hours %}, часы работы: {{ provider_opening_hours }}{% endif %}"
    "{% if provider_phone %}, тел. {{ provider_phone }}{% endif %}{% endif %}",
    "ro": "{% if provider_name and not sensitive %} la {{ provider_name }}"
    "{% if provider_address %}, {{ provider_address }}{% endif %}"
    "{% if provider_opening_hours %}, program: {{ provider_opening_hours }}{% endif %}"
    "{% if provider_phone %}, tel. {{ provider_phone }}{% endif %}{% endif %}",
}
_NO_PROVIDER = {
    "en": '{% if reason_code == "no_provider" %}\nNo provider is left to route it to.{% endif %}',
    "uk": '{% if reason_code == "no_provider" %}\nНемає іншої організації, куди його можна '
    "перенаправити.{% endif %}",
    "ru": '{% if reason_code == "no_provider" %}\nНет другой организации, куда его можно '
    "перенаправить.{% endif %}",
    "ro": '{% if reason_code == "no_provider" %}\nNu mai există alt furnizor către care să fie '
    "redirecționată.{% endif %}",
}

# Staff alerts name a protection referral in the reader's language; a sensitive referral
# reaches its templates as "protection" (messages.SENSITIVE_REDACTED), so it reads the same.
_STAFF_SERVICE = {
    "en": '{% set service = {"protection": "protection"}.get(service_type, service_type) %}',
    "uk": '{% set service = {"protection": "захист"}.get(service_type, service_type) %}',
    "ru": '{% set service = {"protection": "защита"}.get(service_type, service_type) %}',
    "ro": '{% set service = {"protection": "protecție"}.get(service_type, service_type) %}',
}

# --- the templates -------------------------------------------------------------------------

DEFAULT_TEMPLATES: dict[tuple[str, str], DefaultTemplate] = {
    # Beneficiaries (SMS)
    ("HouseholdRegistered", "en"): DefaultTemplate(
        None,
        "Haven: your household is registered. Case number: {{ case_number }}. "
        "Keep it and show it at distributions and services.",
    ),
    ("HouseholdRegistered", "uk"): DefaultTemplate(
        None,
        "Haven: вашу родину зареєстровано. Номер справи: {{ case_number }}. "
        "Збережіть його та показуйте під час видачі допомоги і в службах.",
    ),
    ("HouseholdRegistered", "ru"): DefaultTemplate(
        None,
        "Haven: ваша семья зарегистрирована. Номер дела: {{ case_number }}. "
        "Сохраните его и показывайте при получении помощи и в службах.",
    ),
    ("HouseholdRegistered", "ro"): DefaultTemplate(
        None,
        "Haven: gospodăria dumneavoastră a fost înregistrată. Numărul dosarului: "
        "{{ case_number }}. Păstrați-l și prezentați-l la distribuiri și servicii.",
    ),
    ("DistributionRecorded", "en"): DefaultTemplate(
        None, _ITEMS["en"] + "Haven: you received " + _LINES + ". Case {{ case_number }}."
    ),
    ("DistributionRecorded", "uk"): DefaultTemplate(
        None,
        _ITEMS["uk"] + "Haven: ви отримали: " + _LINES_INTL + ". Номер справи: {{ case_number }}.",
    ),
    ("DistributionRecorded", "ru"): DefaultTemplate(
        None,
        _ITEMS["ru"] + "Haven: вы получили: " + _LINES_INTL + ". Номер дела: {{ case_number }}.",
    ),
    ("DistributionRecorded", "ro"): DefaultTemplate(
        None, _ITEMS["ro"] + "Haven: ați primit: " + _LINES_INTL + ". Dosar: {{ case_number }}."
    ),
    ("ShelterAllocated", "en"): DefaultTemplate(
        None,
        "Haven: {{ beds }} bed(s) are reserved for your household from {{ check_in }}"
        "{% if expected_check_out %} until {{ expected_check_out }}{% endif %}. "
        "Case {{ case_number }}.",
    ),
    ("ShelterAllocated", "uk"): DefaultTemplate(
        None,
        "Haven: для вашої родини зарезервовано місць: {{ beds }}, з {{ check_in }}"
        "{% if expected_check_out %} до {{ expected_check_out }}{% endif %}. "
        "Номер справи: {{ case_number }}.",
    ),
    ("ShelterAllocated", "ru"): DefaultTemplate(
        None,
        "Haven: для вашей семьи зарезервировано мест: {{ beds }}, с {{ check_in }}"
        "{% if expected_check_out %} по {{ expected_check_out }}{% endif %}. "
        "Номер дела: {{ case_number }}.",
    ),
    ("ShelterAllocated", "ro"): DefaultTemplate(
        None,
        "Haven: pentru gospodăria dumneavoastră sunt rezervate {{ beds }} locuri de cazare "
        "din {{ check_in }}{% if expected_check_out %} până la {{ expected_check_out }}"
        "{% endif %}. Dosar: {{ case_number }}.",
    ),
    ("ReferralSent", "en"): DefaultTemplate(
        None,
        _SERVICE["en"] + "Haven: you have been referred for {{ service }}" + _WHERE["en"] + ". "
        "We will tell you when the referral is accepted. Case {{ case_number }}.",
    ),
    ("ReferralSent", "uk"): DefaultTemplate(
        None,
        _SERVICE["uk"] + "Haven: вас направлено для отримання {{ service }}" + _WHERE["uk"] + ". "
        "Ми повідомимо, коли направлення приймуть. Номер справи: {{ case_number }}.",
    ),
    ("ReferralSent", "ru"): DefaultTemplate(
        None,
        _SERVICE["ru"] + "Haven: вы направлены для получения {{ service }}" + _WHERE["ru"] + ". "
        "Мы сообщим, когда направление примут. Номер дела: {{ case_number }}.",
    ),
    ("ReferralSent", "ro"): DefaultTemplate(
        None,
        _SERVICE["ro"] + "Haven: ați primit o trimitere pentru {{ service }}" + _WHERE["ro"] + ". "
        "Vă vom anunța când trimiterea este acceptată. Dosar: {{ case_number }}.",
    ),
    ("ReferralAccepted", "en"): DefaultTemplate(
        None,
        _SERVICE["en"] + "Haven: your referral for {{ service }} was accepted. "
        "The provider is expecting you. Case {{ case_number }}.",
    ),
    ("ReferralAccepted", "uk"): DefaultTemplate(
        None,
        _SERVICE["uk"] + "Haven: ваше направлення для отримання {{ service }} прийнято. "
        "Вас очікують. Номер справи: {{ case_number }}.",
    ),
    ("ReferralAccepted", "ru"): DefaultTemplate(
        None,
        _SERVICE["ru"] + "Haven: ваше направление для получения {{ service }} принято. "
        "Вас ожидают. Номер дела: {{ case_number }}.",
    ),
    ("ReferralAccepted", "ro"): DefaultTemplate(
        None,
        _SERVICE["ro"] + "Haven: trimiterea dumneavoastră pentru {{ service }} a fost "
        "acceptată. Sunteți așteptat(ă). Dosar: {{ case_number }}.",
    ),
    # Staff (e-mail or webhook)
    ("StockLow", "en"): DefaultTemplate(
        "Stock low at {{ site_id }}: {{ sku }}",
        "{{ sku }} ({{ category }}) in warehouse {{ warehouse_id }} at site {{ site_id }} "
        "is below its reorder level.\nBalance: {{ balance }} (reorder level "
        "{{ reorder_level }}).\n" + _DAYS_OF_COVER["en"] + "Please arrange a replenishment.",
    ),
    ("StockLow", "uk"): DefaultTemplate(
        "Низький залишок, {{ site_id }}: {{ sku }}",
        "Залишок {{ sku }} ({{ category }}) на складі {{ warehouse_id }} (локація "
        "{{ site_id }}) нижчий за рівень дозамовлення.\nЗалишок: {{ balance }} (рівень "
        "дозамовлення {{ reorder_level }}).\n" + _DAYS_OF_COVER["uk"] + "Будь ласка, "
        "організуйте поповнення.",
    ),
    ("StockLow", "ru"): DefaultTemplate(
        "Низкий остаток, {{ site_id }}: {{ sku }}",
        "Остаток {{ sku }} ({{ category }}) на складе {{ warehouse_id }} (площадка "
        "{{ site_id }}) ниже уровня дозаказа.\nОстаток: {{ balance }} (уровень дозаказа "
        "{{ reorder_level }}).\n" + _DAYS_OF_COVER["ru"] + "Пожалуйста, организуйте пополнение.",
    ),
    ("StockLow", "ro"): DefaultTemplate(
        "Stoc scăzut la {{ site_id }}: {{ sku }}",
        "Stocul de {{ sku }} ({{ category }}) din depozitul {{ warehouse_id }} (locația "
        "{{ site_id }}) a scăzut sub nivelul de reaprovizionare.\nSold: {{ balance }} (nivel "
        "de reaprovizionare {{ reorder_level }}).\n" + _DAYS_OF_COVER["ro"] + "Vă rugăm să "
        "organizați reaprovizionarea.",
    ),
    ("DuplicateReviewRequested", "en"): DefaultTemplate(
        "Duplicate review waiting at {{ site_id }}",
        "A registration{% if case_number %} (case {{ case_number }}){% endif %} may duplicate "
        "another household at {{ site_id }}.\nScore: {{ score|round(2) }}. Reasons: "
        "{{ reasons|join(', ') }}.\nReview: {{ review_id }}.",
    ),
    ("DuplicateReviewRequested", "uk"): DefaultTemplate(
        "Очікує перевірка дублікатів, {{ site_id }}",
        "Реєстрація{% if case_number %} (справа {{ case_number }}){% endif %} може дублювати "
        "іншу родину на локації {{ site_id }}.\nОцінка: {{ score|round(2) }}. Причини: "
        "{{ reasons|join(', ') }}.\nПеревірка: {{ review_id }}.",
    ),
    ("DuplicateReviewRequested", "ru"): DefaultTemplate(
        "Ожидает проверка дубликатов, {{ site_id }}",
        "Регистрация{% if case_number %} (дело {{ case_number }}){% endif %} может дублировать "
        "другую семью на площадке {{ site_id }}.\nОценка: {{ score|round(2) }}. Причины: "
        "{{ reasons|join(', ') }}.\nПроверка: {{ review_id }}.",
    ),
    ("DuplicateReviewRequested", "ro"): DefaultTemplate(
        "Verificare de duplicat în așteptare la {{ site_id }}",
        "O înregistrare{% if case_number %} (dosarul {{ case_number }}){% endif %} poate "
        "dubla o altă gospodărie la {{ site_id }}.\nScor: {{ score|round(2) }}. Motive: "
        "{{ reasons|join(', ') }}.\nVerificare: {{ review_id }}.",
    ),
    ("ReferralOverdue", "en"): DefaultTemplate(
        _STAFF_SERVICE["en"] + "Referral overdue: {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["en"]
        + "Referral {{ referral_id }}"
        + _CASE["en"]
        + " ({{ service }}, {{ urgency }}) was "
        "due " + _DUE + " and is still {{ status }}." + _PROVIDER["en"] + "\nPlease follow up.",
    ),
    ("ReferralOverdue", "uk"): DefaultTemplate(
        _STAFF_SERVICE["uk"] + "Направлення прострочено: {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["uk"]
        + "Направлення {{ referral_id }}"
        + _CASE["uk"]
        + " ({{ service }}, {{ urgency }}) "
        "мало бути прийняте до "
        + _DUE
        + ", але досі має статус {{ status }}."
        + _PROVIDER["uk"]
        + "\nБудь ласка, вживіть заходів.",
    ),
    ("ReferralOverdue", "ru"): DefaultTemplate(
        _STAFF_SERVICE["ru"] + "Направление просрочено: {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["ru"]
        + "Направление {{ referral_id }}"
        + _CASE["ru"]
        + " ({{ service }}, {{ urgency }}) "
        "должно было быть принято до "
        + _DUE
        + ", но всё ещё в статусе {{ status }}."
        + _PROVIDER["ru"]
        + "\nПожалуйста, примите меры.",
    ),
    ("ReferralOverdue", "ro"): DefaultTemplate(
        _STAFF_SERVICE["ro"] + "Trimitere întârziată: {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["ro"]
        + "Trimiterea {{ referral_id }}"
        + _CASE["ro"]
        + " ({{ service }}, {{ urgency }}) "
        "trebuia acceptată până la "
        + _DUE
        + " și are încă starea {{ status }}."
        + _PROVIDER["ro"]
        + "\nVă rugăm să interveniți.",
    ),
    ("ReferralEscalated", "en"): DefaultTemplate(
        _STAFF_SERVICE["en"]
        + "Referral escalated to you (tier {{ tier }}): {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["en"]
        + "Referral {{ referral_id }}"
        + _CASE["en"]
        + " ({{ service }}, {{ urgency }}) has "
        "been overdue since "
        + _DUE
        + " and is escalated to you (tier {{ tier }})."
        + _PROVIDER["en"]
        + _NO_PROVIDER["en"]
        + "\nPlease act on it today.",
    ),
    ("ReferralEscalated", "uk"): DefaultTemplate(
        _STAFF_SERVICE["uk"]
        + "Направлення передано вам (рівень {{ tier }}): {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["uk"]
        + "Направлення {{ referral_id }}"
        + _CASE["uk"]
        + " ({{ service }}, {{ urgency }}) "
        "прострочене з "
        + _DUE
        + " і передане вам (рівень ескалації {{ tier }})."
        + _PROVIDER["uk"]
        + _NO_PROVIDER["uk"]
        + "\nБудь ласка, вживіть заходів сьогодні.",
    ),
    ("ReferralEscalated", "ru"): DefaultTemplate(
        _STAFF_SERVICE["ru"]
        + "Направление передано вам (уровень {{ tier }}): {{ service }} ({{ urgency }})",
        _STAFF_SERVICE["ru"]
        + "Направление {{ referral_id }}"
        + _CASE["ru"]
        + " ({{ service }}, {{ urgency }}) "
        "просрочено с "
        + _DUE
        + " и передано вам (уровень эскалации {{ tier }})."
        + _PROVIDER["ru"]
        + _NO_PROVIDER["ru"]
        + "\nПожалуйста, примите меры сегодня.",
    ),
    ("ReferralEscalated", "ro"): DefaultTemplate(
        _STAFF_SERVICE["ro"]
        + "Trimitere escaladată către dumneavoastră (nivelul {{ tier }}): {{ service }} "
        "({{ urgency }})",
        _STAFF_SERVICE["ro"]
        + "Trimiterea {{ referral_id }}"
        + _CASE["ro"]
        + " ({{ service }}, {{ urgency }}) "
        "este întârziată din "
        + _DUE
        + " și v-a fost escaladată (nivelul {{ tier }})."
        + _PROVIDER["ro"]
        + _NO_PROVIDER["ro"]
        + "\nVă rugăm să interveniți astăzi.",
    ),
}
