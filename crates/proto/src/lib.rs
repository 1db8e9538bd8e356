//! Generated types, clients and servers for the suite's protos, compiled
//! from `proto/` at build time (nothing generated is checked in).
//!
//! - [`common`]: fact types, measures, filters, periods, subjects.
//! - [`catalog`]: the indicator-catalog service.
//! - [`ingestion`]: the data-ingestion service.
//! - [`scoring`]: the scoring service.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for reflection.
//! - [`convert`]: proto ↔ domain conversions shared by the services' edges.
//! - [`events`]: domain events → proto events, for clients such as `kpictl`.
//! - [`pre_encoded`]: `GetScorecardResponse` and `ListScorecardsResponse`,
//!   hand-written so that a server can send scorecards already encoded.
#![allow(missing_docs, clippy::all, unreachable_pub)]

pub mod convert;
pub mod events;
pub mod pre_encoded;

/// The `kpi.*.v1` packages, nested as the generated code expects.
pub mod kpi {
    /// `kpi.common`.
    pub mod common {
        /// `kpi.common.v1`.
        pub mod v1 {
            tonic::include_proto!("kpi.common.v1");
        }
    }
    /// `kpi.catalog`.
    pub mod catalog {
        /// `kpi.catalog.v1`.
        pub mod v1 {
            tonic::include_proto!("kpi.catalog.v1");
        }
    }
    /// `kpi.ingestion`.
    pub mod ingestion {
        /// `kpi.ingestion.v1`.
        pub mod v1 {
            tonic::include_proto!("kpi.ingestion.v1");
        }
    }
    /// `kpi.scoring`.
    pub mod scoring {
        /// `kpi.scoring.v1`.
        pub mod v1 {
            tonic::include_proto!("kpi.scoring.v1");
            pub use crate::pre_encoded::{GetScorecardResponse, ListScorecardsResponse};
        }
    }
}

pub use kpi::catalog::v1 as catalog;
pub use kpi::common::v1 as common;
pub use kpi::ingestion::v1 as ingestion;
pub use kpi::scoring::v1 as scoring;

/// The encoded `FileDescriptorSet` of every proto of the suite.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("kpi_descriptor");
