//! Math answer checking: extraction, normalisation and exact rational comparison.
