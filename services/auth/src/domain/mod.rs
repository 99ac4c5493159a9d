//! Values parsed at the edge: once a handler holds one, it is known to be valid.

mod email;
mod password;

pub use email::Email;
pub use kernel::domain::DisplayName;
pub use password::Password;
