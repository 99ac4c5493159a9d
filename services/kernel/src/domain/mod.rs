//! Values more than one service parses at its edge.

mod display_name;

pub use display_name::{DisplayName, MAX_CHARS as DISPLAY_NAME_MAX_CHARS};
