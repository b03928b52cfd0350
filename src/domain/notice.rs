//! What a fan is told, and the preferences that choose which notices and by which channels.

use uuid::Uuid;

use super::InvalidField;

/// "It's your turn": the waiting room admitted the fan.
pub const ADMITTED: &str = "queue.admitted";
/// The seats are held, until a time.
pub const HELD: &str = "reservation.created";
/// The hold runs out soon (`IMTICKET_NOTIFY_HOLD_REMINDER_SECONDS` before), still unpaid.
pub const EXPIRING: &str = "reservation.expiring";
/// Paid: the ticket.
pub const TICKET: &str = "reservation.confirmed";
/// The hold ran out unpaid; the seats went back on sale.
pub const EXPIRED: &str = "reservation.expired";

/// Every notice type, in the order of a sale.
pub const TYPES: &[&str] = &[ADMITTED, HELD, EXPIRING, TICKET, EXPIRED];

/// The reminder a held reservation's event also schedules: its own id, derived from the
/// event's so that the reminder is deduplicated like the event (the same event seen twice
/// schedules one reminder), and distinct from it.
pub fn reminder_id(event_id: Uuid) -> Uuid {
    const SALT: u128 = 0x7265_6d69_6e64_6572_2d65_7870_6972_696e; // "reminder-expirin"
    Uuid::from_u128(event_id.as_u128() ^ SALT)
}

/// A fan's choice: which channels, and which notices are muted. The default is everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub email: bool,
    pub webhook: bool,
    pub muted: Vec<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            email: true,
            webhook: true,
            muted: Vec::new(),
        }
    }
}

impl Preferences {
    /// Checks the muted types (known, each once) and returns them sorted.
    pub fn new(email: bool, webhook: bool, mut muted: Vec<String>) -> Result<Self, InvalidField> {
        if let Some(unknown) = muted.iter().find(|t| !TYPES.contains(&t.as_str())) {
            return Err(InvalidField::new(
                "muted",
                format!("{unknown:?} is not one of {}", TYPES.join(", ")),
            ));
        }
        muted.sort();
        if let Some(twice) = muted.windows(2).find(|w| w[0] == w[1]) {
            return Err(InvalidField::new("muted", format!("{:?} is named twice", twice[0])));
        }
        Ok(Self { email, webhook, muted })
    }

    pub fn wants(&self, notice: &str) -> bool {
        !self.muted.iter().any(|m| m == notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_id_is_stable_and_never_the_events_own() {
        let event = Uuid::now_v7();
        assert_eq!(reminder_id(event), reminder_id(event));
        assert_ne!(reminder_id(event), event);
        assert_eq!(reminder_id(reminder_id(event)), event);
    }

    #[test]
    fn preferences_name_only_known_notices() {
        let p = Preferences::new(true, false, vec![EXPIRING.into(), ADMITTED.into()]).unwrap();
        assert_eq!(p.muted, vec![ADMITTED.to_owned(), EXPIRING.to_owned()]);
        let twice = Preferences::new(true, false, vec![EXPIRING.into(), ADMITTED.into(), EXPIRING.into()]);
        assert_eq!(
            twice.unwrap_err().to_string(),
            "muted: \"reservation.expiring\" is named twice"
        );
        assert!(!p.wants(EXPIRING) && p.wants(TICKET));
        assert_eq!(
            Preferences::new(true, true, vec!["payment.failed".into()])
                .unwrap_err()
                .field,
            "muted"
        );
        assert!(Preferences::default().wants(EXPIRED));
    }
}
