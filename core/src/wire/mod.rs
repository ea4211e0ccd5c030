//! Wire formats: the 1-RTT short header and the long headers that may precede it.

pub mod long_header;
pub mod short_header;
mod varint;

pub use long_header::long_packet_len;
pub use short_header::{ConnectionId, MAX_CID_LEN, ShortHeader};
