//! Helpers of the SQLite extension tests.
