//! Response bodies (in progress).
