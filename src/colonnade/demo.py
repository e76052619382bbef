"""The demo shop: three markets and two dozen products, so a fresh clone has something to sell."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.progress import Progress

from colonnade.app import Shop
from colonnade.kernel.money import Money
from colonnade.modules.catalog.service import NewProduct, NewVariant
from colonnade.modules.promotions.service import NewPromotion

MARKETS = [
    ("US", "United States", "USD", "en-US", False, Decimal("0.0725"), "America/New_York"),
    ("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"), "Europe/Berlin"),
    ("JP", "日本", "JPY", "ja-JP", True, Decimal("0.10"), "Asia/Tokyo"),
]
FX_RATES = [("USD", "EUR", Decimal("0.92")), ("USD", "JPY", Decimal("151.37"))]

CATEGORIES = {
    "coffee": {"en-US": "Coffee", "de-DE": "Kaffee", "ja-JP": "コーヒー"},
    "tea": {"en-US": "Tea", "de-DE": "Tee", "ja-JP": "お茶"},
    "kitchen": {"en-US": "Kitchen", "de-DE": "Küche", "ja-JP": "キッチン"},
    "apparel": {"en-US": "Apparel", "de-DE": "Kleidung", "ja-JP": "アパレル"},
}

# slug, category, en-US, de-DE, ja-JP, USD cents, EUR cents or None (then converted), stock
PRODUCTS = [
    (
        "ethiopia-yirgacheffe",
        "coffee",
        "Ethiopia Yirgacheffe beans",
        "Äthiopien Yirgacheffe Bohnen",
        "エチオピア イルガチェフェ豆",
        1850,
        1790,
        120,
    ),
    (
        "colombia-huila",
        "coffee",
        "Colombia Huila beans",
        "Kolumbien Huila Bohnen",
        "コロンビア ウィラ豆",
        1650,
        None,
        200,
    ),
    ("kenya-aa", "coffee", "Kenya AA beans", "Kenia AA Bohnen", "ケニア AA 豆", 2100, 1990, 80),
    (
        "espresso-blend",
        "coffee",
        "House espresso blend",
        "Hausmischung Espresso",
        "ハウス エスプレッソ ブレンド",
        1500,
        1450,
        300,
    ),
    (
        "decaf-swiss-water",
        "coffee",
        "Swiss water decaf",
        "Entkoffeiniert, Schweizer Wasser",
        "スイスウォーター デカフェ",
        1700,
        None,
        60,
    ),
    (
        "cold-brew-pack",
        "coffee",
        "Cold brew pack",
        "Cold-Brew-Paket",
        "コールドブリュー パック",
        2400,
        2290,
        40,
    ),
    ("sencha-uji", "tea", "Uji sencha", "Uji Sencha", "宇治煎茶", 1900, None, 90),
    (
        "matcha-ceremonial",
        "tea",
        "Ceremonial matcha",
        "Zeremonieller Matcha",
        "濃茶用抹茶",
        3200,
        2990,
        25,
    ),
    (
        "darjeeling-first-flush",
        "tea",
        "Darjeeling first flush",
        "Darjeeling First Flush",
        "ダージリン ファーストフラッシュ",
        2200,
        None,
        70,
    ),
    ("earl-grey", "tea", "Earl Grey", "Earl Grey", "アールグレイ", 1200, 1150, 150),
    (
        "rooibos-vanilla",
        "tea",
        "Vanilla rooibos",
        "Rooibos Vanille",
        "バニラ ルイボス",
        1100,
        None,
        110,
    ),
    (
        "oolong-tieguanyin",
        "tea",
        "Tieguanyin oolong",
        "Tieguanyin Oolong",
        "鉄観音 烏龍茶",
        2600,
        None,
        45,
    ),
    (
        "pour-over-kettle",
        "kitchen",
        "Gooseneck pour-over kettle",
        "Schwanenhals-Wasserkocher",
        "グースネック ケトル",
        5900,
        5490,
        35,
    ),
    (
        "burr-grinder",
        "kitchen",
        "Conical burr grinder",
        "Kegelmahlwerk-Mühle",
        "コニカル バー グラインダー",
        12900,
        11990,
        20,
    ),
    (
        "ceramic-dripper",
        "kitchen",
        "Ceramic dripper",
        "Keramik-Handfilter",
        "セラミック ドリッパー",
        2800,
        None,
        75,
    ),
    ("glass-carafe", "kitchen", "Glass carafe", "Glaskaraffe", "ガラス サーバー", 2300, None, 60),
    (
        "digital-scale",
        "kitchen",
        "Digital coffee scale",
        "Digitale Kaffeewaage",
        "デジタル スケール",
        3900,
        3690,
        50,
    ),
    (
        "tea-infuser",
        "kitchen",
        "Stainless tea infuser",
        "Edelstahl-Teesieb",
        "ステンレス 茶こし",
        900,
        None,
        250,
    ),
    (
        "cast-iron-teapot",
        "kitchen",
        "Cast iron teapot",
        "Gusseiserne Teekanne",
        "南部鉄器 急須",
        7400,
        6990,
        15,
    ),
    (
        "barista-apron",
        "apparel",
        "Canvas barista apron",
        "Barista-Schürze aus Canvas",
        "キャンバス バリスタ エプロン",
        4200,
        None,
        40,
    ),
    (
        "roaster-tee",
        "apparel",
        "Roaster T-shirt",
        "Röster-T-Shirt",
        "ロースター Tシャツ",
        2500,
        2390,
        0,
    ),
    ("beanie", "apparel", "Knit beanie", "Strickmütze", "ニット帽", 2000, None, 65),
    (
        "tote-bag",
        "apparel",
        "Coffee sack tote bag",
        "Kaffeesack-Tasche",
        "コーヒー麻袋トート",
        1800,
        None,
        85,
    ),
    (
        "limited-geisha",
        "coffee",
        "Limited Panama Geisha",
        "Limitierter Panama Geisha",
        "限定 パナマ ゲイシャ",
        8900,
        8490,
        10,
    ),
]


DEMO_CODE = "WELCOME10"


async def load_demo(shop: Shop, console: Console) -> None:
    """Load the demo shop once; a shop that has products already is left as it is."""
    if await shop.catalog.products(locale="en-US", q=None, category=None, limit=1):
        console.print("demo data: the shop has products already, nothing loaded")
        return
    with Progress(console=console) as progress:
        task = progress.add_task("Loading the demo shop", total=len(PRODUCTS) + len(MARKETS) + 1)
        for code, name, currency, locale, inclusive, rate, zone in MARKETS:
            await shop.pricing.set_market(code, name, currency, locale, inclusive, rate, zone)
            progress.advance(task)
        for base, quote, fx in FX_RATES:
            await shop.pricing.set_fx_rate(base, quote, fx)
        for slug, names in CATEGORIES.items():
            await shop.catalog.set_category(slug, names, None)
        progress.advance(task)
        for slug, category, en, de, ja, usd, eur, stock in PRODUCTS:
            sku = slug.upper()
            await shop.catalog.create_product(
                NewProduct(
                    titles={"en-US": en, "de-DE": de, "ja-JP": ja},
                    descriptions={"en-US": f"{en}, from the Colonnade demo shop."},
                    default_locale="en-US",
                    variants=[NewVariant(sku=sku, attributes={})],
                    category=category,
                )
            )
            prices = [Money(usd, "USD")] + ([Money(eur, "EUR")] if eur is not None else [])
            await shop.pricing.set_prices(sku, prices)
            await shop.set_on_hand(sku, stock)
            progress.advance(task)
        # A code to try the discount with: 10% off, each customer once.
        await shop.promotions.create(
            NewPromotion(code=DEMO_CODE, title="Welcome", percent_off=10, per_customer_limit=1)
        )
    console.print(
        f"demo data: {len(MARKETS)} markets, {len(CATEGORIES)} categories, {len(PRODUCTS)} products"
        f", the discount code {DEMO_CODE} (10% off)"
    )
