//! Integration tests of the model fake over real HTTP (reqwest on loopback).

mod common;

mod anthropic;
mod behaviour;
mod binary;
mod chat;
mod real_clis;
mod responses;
