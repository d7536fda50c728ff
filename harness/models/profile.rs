//! Which reading of the standards a model follows: the text as written, or a named
//! implementation's documented deviations from it. Every suite takes its model's profile
//! from this one name (`certify --profile`, a scenario file's `profile`).

use serde::{Deserialize, Serialize};

/// Which reading of the RFCs (and IEEE 802.1D) the models follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProfileName {
    /// The RFC and IEEE texts as written.
    Rfc,
    /// Linux 6.x: the text plus each documented Linux deviation.
    Linux,
}
