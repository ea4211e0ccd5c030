//! C ABI for quicseal (being written).
