//! quicseal: QUIC 1-RTT packet protection.
#![no_std]
#![forbid(unsafe_code)]
