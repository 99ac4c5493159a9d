//! Values more than one service parses at its edge.

mod display_name;
mod origin;

pub use display_name::{DisplayName, MAX_CHARS as DISPLAY_NAME_MAX_CHARS};
pub use origin::normalise_origin;
