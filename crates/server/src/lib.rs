//! statuslab server (filled in by the serve work).
