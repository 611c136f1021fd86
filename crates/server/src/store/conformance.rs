//! The store conformance suite: every backend runs the same tests.
