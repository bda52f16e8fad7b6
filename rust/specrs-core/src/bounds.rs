//! (area module; filled in by its issue)
