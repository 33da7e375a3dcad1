//! HLS viewers: playlists (RFC 8216) and a player's pacing.
//!
//! [`playlist`] parses master and media playlists; [`player`] is the pacing
//! and lateness model, pure arithmetic on times; [`viewer`] drives one
//! simulated viewer over a connection.

pub mod player;
pub mod playlist;
pub mod viewer;
