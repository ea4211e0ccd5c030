//! libquicseal.a and libquicseal.so: the C functions of `quicseal-capi` (declared in
//! `include/quicseal.h`, docs/c-abi.md), which a static or dynamic C library exports from
//! the crates it links.

pub use quicseal_capi::*;
