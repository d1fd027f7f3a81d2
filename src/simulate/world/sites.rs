//! The offices: where each is, its egress addresses and home ISPs, and its clock (time
//! zone and daylight saving rule).

use super::{isp, place, Isp, Place};

/// One office. Every employee belongs to a site: it fixes their timezone
/// (and so when their day starts), their office egress addresses and the ISPs
/// they use at home.
pub(in crate::simulate) struct Site {
    pub place: Place,
    /// Standard offset from UTC in minutes.
    pub utc_offset_min: i32,
    /// Daylight saving rule: the local clock moves an hour ahead in summer,
    /// so the working day starts an hour earlier in UTC for a week's
    /// baseline that learned it before the change.
    pub dst: Dst,
    /// Share of employees working from this site.
    pub(super) share: f64,
    pub(super) corp: Isp,
    pub(super) home: [Isp; 2],
    pub(super) mobile: Isp,
}

/// Daylight saving rules of the offices (the civil rules in force since
/// 2007 in the US and Canada, since 1996 in the EU and UK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::simulate) enum Dst {
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
        let (year, _, _) = crate::simulate::render::civil(t_ms.div_euclid(DAY));
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
pub(in crate::simulate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
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
pub(in crate::simulate) static SITES: [Site; 6] = [
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
