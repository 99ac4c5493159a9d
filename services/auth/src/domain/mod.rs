//! Values parsed at the edge: once a handler holds one, it is known to be valid.

mod display_name;
mod email;
mod password;

pub use display_name::DisplayName;
pub use email::Email;
pub use password::Password;
