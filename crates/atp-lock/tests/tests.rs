//! atp-lock's integration tests: one binary. Every registry is a wiremock server on 127.0.0.1.

mod resolve;
