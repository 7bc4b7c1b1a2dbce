//! Simulated factory devices for the demo (filled next).
