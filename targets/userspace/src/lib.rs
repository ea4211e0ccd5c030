//! quicseal's userspace fallback (being written).
