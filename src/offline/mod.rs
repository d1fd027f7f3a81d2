//! Offline work.
pub mod backtest;
pub mod evaluate;
pub mod tune;
