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
//!
//! `sites` holds the offices and their clocks (time zones, daylight saving).

mod sites;

pub(super) use sites::{Site, SITES};

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
        World::of(people)
    }

    /// The world of `people`: each site's people with their cumulative activity (to pick
    /// one by weight), and the population's mean failure probability.
    fn of(people: Vec<User>) -> World {
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
