//! Values parsed at the edge.

mod invite_code;

pub use invite_code::InviteCode;
pub use kernel::domain::DisplayName;
