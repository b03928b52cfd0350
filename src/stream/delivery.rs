//! What a consumer holds between reading an entry and acking it.

/// One delivered entry.
pub(super) struct Delivery {
    pub(super) id: String,
    pub(super) fields: Vec<(String, String)>,
    /// How many times it has been delivered, this delivery included.
    pub(super) deliveries: u32,
}

impl Delivery {
    /// An entry read for the first time (XREADGROUP `>`).
    pub(super) fn first(id: String, fields: Vec<(String, String)>) -> Self {
        Self {
            id,
            fields,
            deliveries: 1,
        }
    }
}
