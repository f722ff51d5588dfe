//! Isolation layer and execution daemon for untrusted model-written code.
