//! Values parsed at the edge.

mod display_name;
mod invite_code;

pub use display_name::DisplayName;
pub use invite_code::InviteCode;
