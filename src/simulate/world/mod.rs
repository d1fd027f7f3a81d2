//! The simulated organisation: where people work, which networks and browsers
//! they use, and the hostile networks attacks come from.
//!
//! Everything here is fixed tables plus a population drawn once from the seed.
//! Real sign-in logs are dominated by a handful of corporate egress addresses
//! (everyone in an office shares one NAT address), a long tail of home ISP
//! addresses (one or two per person, stable for months) and a sprinkle of
//! mobile carrier addresses that change constantly. Attack traffic looks
//! different: hosting providers and residential proxies spread over many
//! countries. Detectors key on exactly these differences, so the tables keep
//! them.
//!
//! Addresses: every IPv4 address produced comes from ranges reserved for
//! documentation (RFC 5737, `203.0.113.0/24`, used for corporate egress) or
//! for benchmarking (RFC 2544, `198.18.0.0/15`, everything else), so synthetic
//! data can never accuse a real host. Geography and ASNs are real public facts
//! and only decorate the events.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::{Beta, Distribution, LogNormal};

use super::stream;

/// A city as Okta's `geographicalContext` reports it. Latitude and longitude
/// are kept as JSON number text so rendering never formats floats.
#[derive(Debug)]
pub(super) struct Place {
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub postal: &'static str,
    pub lat: &'static str,
    pub lon: &'static str,
}

/// An autonomous system as Okta's `securityContext` reports it.
#[derive(Debug)]
pub(super) struct Isp {
    pub asn: u32,
    pub as_org: &'static str,
    pub isp: &'static str,
    pub domain: &'static str,
}

/// A browser or tool, as Okta parses its user agent into `client.userAgent`.
#[derive(Debug)]
pub(super) struct Agent {
    pub raw: &'static str,
    pub os: &'static str,
    pub browser: &'static str,
    pub device: &'static str,
}

/// Where a request came from: address plus what Okta's IP intelligence says
/// about it. Copy-sized so events can carry it by value.
#[derive(Clone, Copy, Debug)]
pub(super) struct Net {
    pub ip: u32,
    pub place: &'static Place,
    pub isp: &'static Isp,
    pub proxy: bool,
}

const fn place(
    city: &'static str,
    state: &'static str,
    country: &'static str,
    postal: &'static str,
    lat: &'static str,
    lon: &'static str,
) -> Place {
    Place {
        city,
        state,
        country,
        postal,
        lat,
        lon,
    }
}

const fn isp(asn: u32, as_org: &'static str, isp: &'static str, domain: &'static str) -> Isp {
    Isp {
        asn,
        as_org,
        isp,
        domain,
    }
}

const fn agent(
    raw: &'static str,
    os: &'static str,
    browser: &'static str,
    device: &'static str,
) -> Agent {
    Agent {
        raw,
        os,
        browser,
        device,
    }
}

/// One office. Every employee belongs to a site: it fixes their timezone
/// (and so when their day starts), their office egress addresses and the ISPs
/// they use at home.
pub(super) struct Site {
    pub place: Place,
    /// Standard offset from UTC in minutes.
    pub utc_offset_min: i32,
    /// Daylight saving rule: the local clock moves an hour ahead in summer,
    /// so the working day starts an hour earlier in UTC for a week's
    /// baseline that learned it before the change.
    pub dst: Dst,
    /// Share of employees working from this site.
    share: f64,
    corp: Isp,
    home: [Isp; 2],
    mobile: Isp,
}

/// Daylight saving rules of the offices (the civil rules in force since
/// 2007 in the US and Canada, since 1996 in the EU and UK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dst {
    /// From the second Sunday of March, 02:00 local, to the first Sunday of
    /// November, 02:00 local (daylight time).
    NorthAmerica,
    /// From the last Sunday of March to the last Sunday of October, 01:00
    /// UTC both.
    Europe,
}

impl Site {
    /// Offset from UTC in minutes at UTC instant `t_ms`, daylight saving
    /// included.
    pub fn offset_at(&self, t_ms: i64) -> i32 {
        self.utc_offset_min
            + if self.dst.in_summer(self.utc_offset_min, t_ms) {
                60
            } else {
                0
            }
    }
}

impl Dst {
    /// The UTC instants (ms) daylight time starts and ends in the year of
    /// `t_ms`, for an office whose standard offset is `std_min`.
    pub fn bounds(self, std_min: i32, t_ms: i64) -> (i64, i64) {
        const DAY: i64 = 86_400_000;
        let (year, _, _) = super::render::civil(t_ms.div_euclid(DAY));
        // Day number of the n-th Sunday (n ≥ 1) of a month, or the last
        // one (n = 0).
        let sunday = |month: u32, n: i64| -> i64 {
            let first = days_from_civil(year, month, 1);
            // 1970-01-01 was a Thursday: (day + 4) % 7 == 0 on Sundays.
            let first_sunday = first + (7 - (first + 4).rem_euclid(7)) % 7;
            if n > 0 {
                first_sunday + 7 * (n - 1)
            } else {
                let next = if month == 12 {
                    days_from_civil(year + 1, 1, 1)
                } else {
                    days_from_civil(year, month + 1, 1)
                };
                let mut d = first_sunday;
                while d + 7 < next {
                    d += 7;
                }
                d
            }
        };
        match self {
            Dst::NorthAmerica => {
                let std = i64::from(std_min) * 60_000;
                // 02:00 local standard time, then 02:00 local daylight time.
                (
                    sunday(3, 2) * DAY + 2 * 3_600_000 - std,
                    sunday(11, 1) * DAY + 3_600_000 - std,
                )
            }
            Dst::Europe => (
                sunday(3, 0) * DAY + 3_600_000,
                sunday(10, 0) * DAY + 3_600_000,
            ),
        }
    }

    fn in_summer(self, std_min: i32, t_ms: i64) -> bool {
        let (start, end) = self.bounds(std_min, t_ms);
        (start..end).contains(&t_ms)
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The company is North-American with a London office, so 88 % of people
/// share roughly one working day (US Eastern to Pacific) and the curve has
/// one dominant peak, with a small early shoulder from London.
#[rustfmt::skip]
pub(super) static SITES: [Site; 6] = [
    Site {
        place: place("New York", "New York", "United States", "10001", "40.7128", "-74.006"),
        utc_offset_min: -300,
        dst: Dst::NorthAmerica,
        share: 0.38,
        corp: isp(3356, "level 3 parent, llc", "lumen technologies", "lumen.com"),
        home: [
            isp(7922, "comcast cable communications, llc", "comcast cable", "comcast.net"),
            isp(701, "verizon business", "verizon fios", "verizon.net"),
        ],
        mobile: isp(21928, "t-mobile usa, inc.", "t-mobile usa", "tmobile.com"),
    },
    Site {
        place: place("Chicago", "Illinois", "United States", "60601", "41.8781", "-87.6298"),
        utc_offset_min: -360,
        dst: Dst::NorthAmerica,
        share: 0.14,
        corp: isp(6461, "zayo bonded", "zayo group", "zayo.com"),
        home: [
            isp(7922, "comcast cable communications, llc", "comcast cable", "comcast.net"),
            isp(7018, "at&t services, inc.", "at&t internet", "att.net"),
        ],
        mobile: isp(20057, "at&t mobility llc", "at&t wireless", "att.com"),
    },
    Site {
        place: place("Austin", "Texas", "United States", "78701", "30.2672", "-97.7431"),
        utc_offset_min: -360,
        dst: Dst::NorthAmerica,
        share: 0.10,
        corp: isp(7018, "at&t services, inc.", "at&t enterprises", "att.com"),
        home: [
            isp(11427, "charter communications inc", "spectrum", "spectrum.com"),
            isp(16591, "google fiber inc.", "google fiber", "googlefiber.net"),
        ],
        mobile: isp(22394, "verizon wireless", "verizon wireless", "verizonwireless.com"),
    },
    Site {
        place: place("San Francisco", "California", "United States", "94105", "37.7749", "-122.4194"),
        utc_offset_min: -480,
        dst: Dst::NorthAmerica,
        share: 0.20,
        corp: isp(174, "cogent communications", "cogent", "cogentco.com"),
        home: [
            isp(7922, "comcast cable communications, llc", "comcast cable", "comcast.net"),
            isp(46375, "sonic telecom llc", "sonic", "sonic.net"),
        ],
        mobile: isp(21928, "t-mobile usa, inc.", "t-mobile usa", "tmobile.com"),
    },
    Site {
        place: place("Toronto", "Ontario", "Canada", "M5H", "43.6532", "-79.3832"),
        utc_offset_min: -300,
        dst: Dst::NorthAmerica,
        share: 0.06,
        corp: isp(577, "bell canada", "bell canada", "bell.ca"),
        home: [
            isp(812, "rogers communications canada inc.", "rogers", "rogers.com"),
            isp(577, "bell canada", "bell canada", "bell.ca"),
        ],
        mobile: isp(812, "rogers communications canada inc.", "rogers wireless", "rogers.com"),
    },
    Site {
        place: place("London", "England", "United Kingdom", "EC1A", "51.5074", "-0.1278"),
        utc_offset_min: 0,
        dst: Dst::Europe,
        share: 0.12,
        corp: isp(8220, "colt technology services group limited", "colt", "colt.net"),
        home: [
            isp(2856, "british telecommunications plc", "bt", "bt.com"),
            isp(5089, "virgin media limited", "virgin media", "virginmedia.com"),
        ],
        mobile: isp(12576, "ee limited", "ee", "ee.co.uk"),
    },
];

/// Where attack traffic comes from. Credential-stuffing tools rent rotating
/// proxies: hosting providers (cheap, often flagged as proxies) and
/// residential proxy networks (home ISPs in many countries, harder to block).
/// The `bool` marks hosting networks, which Okta usually reports as proxies.
#[rustfmt::skip]
static HOSTILE: [(Place, Isp, bool); 24] = [
    (place("Ashburn", "Virginia", "United States", "20147", "39.0438", "-77.4874"), isp(14618, "amazon.com, inc.", "amazon.com", "amazonaws.com"), true),
    (place("Frankfurt am Main", "Hesse", "Germany", "60313", "50.1109", "8.6821"), isp(24940, "hetzner online gmbh", "hetzner online", "your-server.de"), true),
    (place("Amsterdam", "North Holland", "Netherlands", "1012", "52.3676", "4.9041"), isp(14061, "digitalocean, llc", "digitalocean", "digitalocean.com"), true),
    (place("Roubaix", "Hauts-de-France", "France", "59100", "50.6942", "3.1746"), isp(16276, "ovh sas", "ovh", "ovh.net"), true),
    (place("Singapore", "Singapore", "Singapore", "018989", "1.2897", "103.8501"), isp(45102, "alibaba us technology co., ltd.", "alibaba cloud", "alibaba.com"), true),
    (place("Tokyo", "Tokyo", "Japan", "100-0001", "35.6895", "139.6917"), isp(20473, "the constant company, llc", "vultr", "vultr.com"), true),
    (place("Los Angeles", "California", "United States", "90017", "34.0522", "-118.2437"), isp(8100, "quadranet enterprises llc", "quadranet", "quadranet.com"), true),
    (place("Hong Kong", "Hong Kong", "Hong Kong", "999077", "22.3193", "114.1694"), isp(132203, "tencent building, kejizhongyi avenue", "tencent cloud", "tencent.com"), true),
    (place("Sao Paulo", "Sao Paulo", "Brazil", "01000", "-23.5505", "-46.6333"), isp(28573, "claro nxt telecomunicacoes ltda", "claro brasil", "claro.com.br"), false),
    (place("Hanoi", "Hanoi", "Vietnam", "100000", "21.0278", "105.8342"), isp(45899, "vnpt corp", "vnpt", "vnpt.vn"), false),
    (place("Beijing", "Beijing", "China", "100000", "39.9042", "116.4074"), isp(4837, "china unicom backbone", "china unicom", "chinaunicom.cn"), false),
    (place("Shanghai", "Shanghai", "China", "200000", "31.2304", "121.4737"), isp(4134, "chinanet", "china telecom", "chinatelecom.com.cn"), false),
    (place("Moscow", "Moscow", "Russia", "101000", "55.7558", "37.6173"), isp(12389, "pjsc rostelecom", "rostelecom", "rt.ru"), false),
    (place("Mumbai", "Maharashtra", "India", "400001", "19.076", "72.8777"), isp(55836, "reliance jio infocomm limited", "jio", "jio.com"), false),
    (place("Jakarta", "Jakarta", "Indonesia", "10110", "-6.2088", "106.8456"), isp(7713, "pt telekomunikasi indonesia", "telkom indonesia", "telkom.co.id"), false),
    (place("Istanbul", "Istanbul", "Turkey", "34000", "41.0082", "28.9784"), isp(9121, "turk telekomunikasyon anonim sirketi", "turk telekom", "turktelekom.com.tr"), false),
    (place("Seoul", "Seoul", "South Korea", "04524", "37.5665", "126.978"), isp(4766, "korea telecom", "kt", "kt.com"), false),
    (place("Kyiv", "Kyiv City", "Ukraine", "01001", "50.4501", "30.5234"), isp(15895, "kyivstar pjsc", "kyivstar", "kyivstar.ua"), false),
    (place("Bucharest", "Bucharest", "Romania", "010011", "44.4268", "26.1025"), isp(8708, "rcs & rds sa", "digi romania", "rcs-rds.ro"), false),
    (place("Lagos", "Lagos", "Nigeria", "100001", "6.5244", "3.3792"), isp(29465, "mtn nigeria communication limited", "mtn nigeria", "mtnnigeria.net"), false),
    (place("Mexico City", "Mexico City", "Mexico", "06000", "19.4326", "-99.1332"), isp(8151, "uninet s.a. de c.v.", "telmex", "telmex.com"), false),
    (place("Warsaw", "Mazovia", "Poland", "00-001", "52.2297", "21.0122"), isp(5617, "orange polska spolka akcyjna", "orange polska", "orange.pl"), false),
    (place("Dallas", "Texas", "United States", "75201", "32.7767", "-96.797"), isp(20115, "charter communications llc", "spectrum", "spectrum.com"), false),
    (place("Atlanta", "Georgia", "United States", "30303", "33.749", "-84.388"), isp(7922, "comcast cable communications, llc", "comcast cable", "comcast.net"), false),
];

/// Employees' desktop browsers, weighted towards Chrome as in most companies.
#[rustfmt::skip]
static DESKTOP: [(Agent, f64); 6] = [
    (agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Mac OS X", "CHROME", "Computer"), 0.34),
    (agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Windows 10", "CHROME", "Computer"), 0.26),
    (agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Windows 10", "EDGE", "Computer"), 0.16),
    (agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Mac OS X", "SAFARI", "Computer"), 0.12),
    (agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Windows 10", "FIREFOX", "Computer"), 0.08),
    (agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Linux", "FIREFOX", "Computer"), 0.04),
];

/// Employees' phones, for sign-ins away from the desk.
#[rustfmt::skip]
static MOBILE: [Agent; 2] = [
    agent("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "iOS", "SAFARI", "Mobile"),
    agent("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Android", "CHROME", "Mobile"),
];

/// What attack tooling announces itself as: scripting libraries, or a stale
/// browser string copied into a config years ago.
#[rustfmt::skip]
pub(super) static TOOLS: [Agent; 6] = [
    agent("python-requests/2.32.3", "Unknown", "UNKNOWN", "Unknown"),
    agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36", "Windows 10", "CHROME", "Computer"),
    agent("Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:91.0) Gecko/20100101 Firefox/91.0", "Windows 7", "FIREFOX", "Computer"),
    agent("curl/8.5.0", "Unknown", "UNKNOWN", "Unknown"),
    agent("okhttp/4.12.0", "Unknown", "UNKNOWN", "Unknown"),
    agent("Go-http-client/1.1", "Unknown", "UNKNOWN", "Unknown"),
];

/// Name parts for employees and for the made-up addresses in combo lists.
#[rustfmt::skip]
pub(super) static FIRST: [&str; 64] = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily",
    "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Sharon",
    "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Amy", "Jacob", "Angela", "Priya", "Wei",
];

#[rustfmt::skip]
pub(super) static LAST: [&str; 64] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Patel", "Kim", "Chen", "Singh", "Murphy", "Cook", "Rogers",
    "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Kelly", "Howard",
];

/// The tenant's email domain: every real login ends with it.
pub(super) const DOMAIN: &str = "example.com";

/// How this person confirms the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Factor {
    /// Okta Verify push: produces `system.push.send_factor_verify_push`
    /// before the `auth_via_mfa` result, and is what push-fatigue abuses.
    Push,
    /// A six-digit code typed in: only `auth_via_mfa`.
    Totp,
}

pub(super) struct User {
    /// Okta user id: `00u` plus 17 base-62 characters.
    pub id: String,
    pub login: String,
    pub display: String,
    pub site: usize,
    /// Relative activity: a log-normal spread, because some people (admins,
    /// engineers with many apps) sign in several times as often as others.
    pub weight: f64,
    /// Chance that one password attempt fails. Most people rarely mistype;
    /// a few do it constantly, so this is Beta-distributed with a long tail.
    pub fail_prob: f64,
    pub factor: Factor,
    /// Works from home: never appears on the office egress address.
    pub remote: bool,
    pub corp: Net,
    pub home: Net,
    pub desktop: &'static Agent,
    pub phone: &'static Agent,
}

/// Employees grouped by site with cumulative weights, so drawing "who signs
/// in next at this site" is one binary search.
pub(super) struct SiteUsers {
    pub users: Vec<u32>,
    cumulative: Vec<f64>,
}

impl SiteUsers {
    /// Sum of the weights of this site's users: the site's expected share of
    /// sign-ins, in units of one average person.
    pub fn total_weight(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    pub fn pick(&self, rng: &mut SmallRng) -> Option<u32> {
        let total = self.total_weight();
        if self.users.is_empty() || total <= 0.0 {
            return None;
        }
        let x = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.users.get(i.min(self.users.len() - 1)).copied()
    }
}

pub(super) struct World {
    pub users: Vec<User>,
    pub sites: Vec<SiteUsers>,
    /// Weighted mean of `fail_prob`: what share of password attempts fail in
    /// quiet times. Incidents scale "hard" attacks against it.
    pub mean_fail_prob: f64,
}

/// A random address in the benchmarking range `198.18.0.0/15`.
pub(super) fn bench_ip(rng: &mut SmallRng) -> u32 {
    (198 << 24) | (18 << 16) | rng.random_range(0..(1u32 << 17))
}

/// A network on the hostile list, with a fresh address.
pub(super) fn hostile_net(rng: &mut SmallRng) -> Net {
    let (place, isp, hosting) = &HOSTILE[rng.random_range(0..HOSTILE.len())];
    Net {
        ip: bench_ip(rng),
        place,
        isp,
        // Okta's proxy flag catches most hosting exits and some residential
        // proxies.
        proxy: if *hosting {
            rng.random_bool(0.7)
        } else {
            rng.random_bool(0.15)
        },
    }
}

impl World {
    /// Draws the population for `users` people. Only depends on the seed, so
    /// the same seed always yields the same people.
    pub fn build(seed: u64, users: u32) -> World {
        let mut rng = stream(seed, 1);
        // Log-normal activity with mean 1 (μ = -σ²/2).
        let weight_dist = LogNormal::new(-0.18, 0.6).ok();
        let fail_dist = Beta::new(2.0, 40.0).ok();
        let mut namesakes = HashMap::new();
        let mut people = Vec::with_capacity(users as usize);
        for i in 0..users {
            let first = FIRST[rng.random_range(0..FIRST.len())];
            let last = LAST[rng.random_range(0..LAST.len())];
            // first.last@, then first.last2@, first.last3@ for namesakes
            // (names never end in a digit, so suffixed logins cannot clash).
            let base = format!(
                "{}.{}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            );
            let seen = namesakes.entry(base).or_insert(0u32);
            *seen += 1;
            let login = match *seen {
                1 => format!("{first}.{last}@{DOMAIN}").to_ascii_lowercase(),
                n => format!("{first}.{last}{n}@{DOMAIN}").to_ascii_lowercase(),
            };
            let site = pick_site(&mut rng);
            let s = &SITES[site];
            // Two NAT addresses per office; each laptop tends to stick to one.
            let corp_ip =
                u32::from_be_bytes([203, 0, 113, 10 + 2 * site as u8 + rng.random_range(0..2u8)]);
            let home_isp = &s.home[rng.random_range(0..2)];
            let desktop = pick_desktop(&mut rng);
            people.push(User {
                id: okta_id("00u", seed ^ 0x5553_4552, u64::from(i)),
                login,
                display: format!("{first} {last}"),
                site,
                weight: weight_dist.map_or(1.0, |d| d.sample(&mut rng)),
                fail_prob: fail_dist.map_or(0.04, |d| d.sample(&mut rng)),
                factor: if rng.random_bool(0.85) {
                    Factor::Push
                } else {
                    Factor::Totp
                },
                remote: rng.random_bool(0.25),
                corp: Net {
                    ip: corp_ip,
                    place: &s.place,
                    isp: &s.corp,
                    proxy: false,
                },
                home: Net {
                    ip: bench_ip(&mut rng),
                    place: &s.place,
                    isp: home_isp,
                    proxy: false,
                },
                desktop,
                phone: &MOBILE[rng.random_range(0..MOBILE.len())],
            });
        }
        let mut sites: Vec<SiteUsers> = SITES
            .iter()
            .map(|_| SiteUsers {
                users: Vec::new(),
                cumulative: Vec::new(),
            })
            .collect();
        let mut total_w = 0.0;
        let mut total_wf = 0.0;
        for (i, u) in people.iter().enumerate() {
            let su = &mut sites[u.site];
            let c = su.total_weight() + u.weight;
            su.users.push(i as u32);
            su.cumulative.push(c);
            total_w += u.weight;
            total_wf += u.weight * u.fail_prob;
        }
        World {
            users: people,
            sites,
            mean_fail_prob: if total_w > 0.0 {
                total_wf / total_w
            } else {
                0.0
            },
        }
    }

    /// Where this person's request comes from at a given local hour: the
    /// office during working hours (unless remote), home in the evening, the
    /// phone now and then. Mobile carriers rotate addresses, so each mobile
    /// sign-in gets a fresh one.
    pub fn pick_net(
        &self,
        user: &User,
        local_hour: u32,
        rng: &mut SmallRng,
    ) -> (Net, &'static Agent) {
        let office_hours = (8..18).contains(&local_hour);
        let x = rng.random::<f64>();
        let mobile_share = if office_hours { 0.05 } else { 0.12 };
        if x < mobile_share {
            let s = &SITES[user.site];
            let net = Net {
                ip: bench_ip(rng),
                place: &s.place,
                isp: &s.mobile,
                proxy: false,
            };
            (net, user.phone)
        } else if office_hours && !user.remote && x < 0.78 {
            (user.corp, user.desktop)
        } else {
            (user.home, user.desktop)
        }
    }
}

fn pick_site(rng: &mut SmallRng) -> usize {
    let mut x = rng.random::<f64>();
    for (i, s) in SITES.iter().enumerate() {
        if x < s.share {
            return i;
        }
        x -= s.share;
    }
    0
}

fn pick_desktop(rng: &mut SmallRng) -> &'static Agent {
    let mut x = rng.random::<f64>();
    for (a, w) in &DESKTOP {
        if x < *w {
            return a;
        }
        x -= w;
    }
    &DESKTOP[0].0
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `n` base-62 characters derived from `x` (re-mixed every ten
/// characters, since a u64 holds about ten base-62 digits).
pub(super) fn push_base62(out: &mut Vec<u8>, mut x: u64, n: usize) {
    let mut left = 0;
    let mut v = 0;
    for _ in 0..n {
        if left == 0 {
            x = super::mix(x);
            v = x;
            left = 10;
        }
        out.push(BASE62[(v % 62) as usize]);
        v /= 62;
        left -= 1;
    }
}

/// An Okta-style object id: a three-character type prefix (`00u` for users)
/// and 17 base-62 characters.
fn okta_id(prefix: &str, salt: u64, i: u64) -> String {
    let mut out = prefix.as_bytes().to_vec();
    push_base62(&mut out, salt ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 17);
    String::from_utf8_lossy(&out).into_owned()
}
