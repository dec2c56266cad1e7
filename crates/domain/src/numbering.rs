//! The time zone a phone number implies, where that is unambiguous: countries that keep one
//! zone, and North American area codes whose whole territory keeps one zone. Anything else
//! (Russia, Brazil, Australia, Mexico, split area codes, numbers not listed) is `None`, and
//! the caller's default applies. The table covers the larger North American area codes; a
//! missing one only means the campaign's default zone is used, never a wrong guess.

/// Country calling codes of countries with a single time zone (longest prefixes first where
/// they overlap).
const COUNTRIES: &[(&str, &str)] = &[
    ("+353", "Europe/Dublin"),
    ("+358", "Europe/Helsinki"),
    ("+972", "Asia/Jerusalem"),
    ("+971", "Asia/Dubai"),
    ("+852", "Asia/Hong_Kong"),
    ("+886", "Asia/Taipei"),
    ("+44", "Europe/London"),
    ("+33", "Europe/Paris"),
    ("+49", "Europe/Berlin"),
    ("+39", "Europe/Rome"),
    ("+31", "Europe/Amsterdam"),
    ("+32", "Europe/Brussels"),
    ("+41", "Europe/Zurich"),
    ("+43", "Europe/Vienna"),
    ("+45", "Europe/Copenhagen"),
    ("+46", "Europe/Stockholm"),
    ("+47", "Europe/Oslo"),
    ("+48", "Europe/Warsaw"),
    ("+30", "Europe/Athens"),
    ("+36", "Europe/Budapest"),
    ("+40", "Europe/Bucharest"),
    ("+27", "Africa/Johannesburg"),
    ("+81", "Asia/Tokyo"),
    ("+82", "Asia/Seoul"),
    ("+86", "Asia/Shanghai"),
    ("+91", "Asia/Kolkata"),
    ("+65", "Asia/Singapore"),
    ("+63", "Asia/Manila"),
    ("+66", "Asia/Bangkok"),
];

/// North American area codes that lie wholly in one zone.
const NANP: &[(&str, &str)] = &[
    // Eastern
    ("201", "America/New_York"),
    ("202", "America/New_York"),
    ("203", "America/New_York"),
    ("207", "America/New_York"),
    ("212", "America/New_York"),
    ("215", "America/New_York"),
    ("216", "America/New_York"),
    ("267", "America/New_York"),
    ("301", "America/New_York"),
    ("302", "America/New_York"),
    ("305", "America/New_York"),
    ("404", "America/New_York"),
    ("407", "America/New_York"),
    ("410", "America/New_York"),
    ("412", "America/New_York"),
    ("413", "America/New_York"),
    ("443", "America/New_York"),
    ("518", "America/New_York"),
    ("585", "America/New_York"),
    ("603", "America/New_York"),
    ("609", "America/New_York"),
    ("617", "America/New_York"),
    ("646", "America/New_York"),
    ("678", "America/New_York"),
    ("703", "America/New_York"),
    ("704", "America/New_York"),
    ("718", "America/New_York"),
    ("732", "America/New_York"),
    ("757", "America/New_York"),
    ("770", "America/New_York"),
    ("786", "America/New_York"),
    ("802", "America/New_York"),
    ("804", "America/New_York"),
    ("857", "America/New_York"),
    ("908", "America/New_York"),
    ("914", "America/New_York"),
    ("917", "America/New_York"),
    ("919", "America/New_York"),
    ("954", "America/New_York"),
    ("973", "America/New_York"),
    ("416", "America/Toronto"),
    ("437", "America/Toronto"),
    ("613", "America/Toronto"),
    ("647", "America/Toronto"),
    ("905", "America/Toronto"),
    ("514", "America/Toronto"),
    ("438", "America/Toronto"),
    // Central
    ("214", "America/Chicago"),
    ("281", "America/Chicago"),
    ("312", "America/Chicago"),
    ("314", "America/Chicago"),
    ("469", "America/Chicago"),
    ("504", "America/Chicago"),
    ("512", "America/Chicago"),
    ("612", "America/Chicago"),
    ("615", "America/Chicago"),
    ("651", "America/Chicago"),
    ("713", "America/Chicago"),
    ("773", "America/Chicago"),
    ("816", "America/Chicago"),
    ("832", "America/Chicago"),
    ("847", "America/Chicago"),
    ("901", "America/Chicago"),
    ("972", "America/Chicago"),
    ("204", "America/Winnipeg"),
    // Mountain
    ("303", "America/Denver"),
    ("505", "America/Denver"),
    ("720", "America/Denver"),
    ("801", "America/Denver"),
    ("403", "America/Edmonton"),
    ("780", "America/Edmonton"),
    // Arizona keeps standard time all year.
    ("480", "America/Phoenix"),
    ("520", "America/Phoenix"),
    ("602", "America/Phoenix"),
    ("623", "America/Phoenix"),
    // Pacific
    ("206", "America/Los_Angeles"),
    ("213", "America/Los_Angeles"),
    ("310", "America/Los_Angeles"),
    ("323", "America/Los_Angeles"),
    ("408", "America/Los_Angeles"),
    ("415", "America/Los_Angeles"),
    ("425", "America/Los_Angeles"),
    ("503", "America/Los_Angeles"),
    ("510", "America/Los_Angeles"),
    ("562", "America/Los_Angeles"),
    ("619", "America/Los_Angeles"),
    ("626", "America/Los_Angeles"),
    ("650", "America/Los_Angeles"),
    ("702", "America/Los_Angeles"),
    ("714", "America/Los_Angeles"),
    ("818", "America/Los_Angeles"),
    ("858", "America/Los_Angeles"),
    ("916", "America/Los_Angeles"),
    ("949", "America/Los_Angeles"),
    ("604", "America/Vancouver"),
    ("778", "America/Vancouver"),
    // Alaska and Hawaii
    ("907", "America/Anchorage"),
    ("808", "Pacific/Honolulu"),
];

/// The IANA zone an E.164 number implies, when it is unambiguous.
pub fn timezone_of(e164: &str) -> Option<&'static str> {
    if let Some(national) = e164.strip_prefix("+1") {
        let area = national.get(..3)?;
        return NANP.iter().find(|(a, _)| *a == area).map(|(_, z)| *z);
    }
    COUNTRIES
        .iter()
        .find(|(prefix, _)| e164.starts_with(prefix))
        .map(|(_, z)| *z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_imply_zones_only_when_unambiguous() {
        assert_eq!(timezone_of("+12125550100"), Some("America/New_York"));
        assert_eq!(timezone_of("+14155550100"), Some("America/Los_Angeles"));
        assert_eq!(timezone_of("+16025550100"), Some("America/Phoenix"));
        assert_eq!(timezone_of("+442071234567"), Some("Europe/London"));
        assert_eq!(timezone_of("+33612345678"), Some("Europe/Paris"));
        assert_eq!(timezone_of("+353861234567"), Some("Europe/Dublin"));
        // Several zones (Russia, Australia, Brazil) or a fictional 555 area code: no guess.
        assert_eq!(timezone_of("+74951234567"), None);
        assert_eq!(timezone_of("+61212345678"), None);
        assert_eq!(timezone_of("+15555550100"), None);
        // Every zone named is one the time-zone database knows.
        for (_, z) in COUNTRIES.iter().chain(NANP) {
            assert!(jiff::tz::TimeZone::get(z).is_ok(), "{z}");
        }
    }
}
