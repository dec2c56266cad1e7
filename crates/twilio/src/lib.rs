//! Twilio wire formats only: request signatures, TwiML, Media Streams messages and the REST
//! calls we make. Knows nothing about organizations or agents.

pub mod media;
pub mod numbers;
pub mod recordings;
pub mod rest;
pub mod signature;
pub mod twiml;
