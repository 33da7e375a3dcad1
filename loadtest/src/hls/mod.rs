//! HLS viewers, the pure part: playlists (RFC 8216) and a player's pacing.
//!
//! [`playlist`] parses master and media playlists; [`player`] is the pacing
//! and lateness model, pure arithmetic on times. Neither does I/O: the viewer
//! that fetches over a connection and follows them is
//! [`crate::client::viewer`].

pub mod player;
pub mod playlist;
