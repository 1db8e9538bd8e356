//! A gRPC client codec that keeps each answer's bytes as they came, for the
//! timed calls of `cache` and `score`: a load generator that decoded every
//! 1.8 KB scorecard into structs spent a sixth of its CPU on it, on the same
//! two cores as the server it measures. `cache` compares each answer with
//! the bytes of the answer it decoded and checked at warm-up instead (the
//! stricter check); `score` decodes the pages once the timing is done.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::{Buf as _, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstEncoder;

use crate::ingest::MAX_MESSAGE_BYTES;

/// Encodes requests of type `Q` with prost; answers are their raw bytes.
pub(crate) struct RawAnswers<Q>(PhantomData<Q>);

impl<Q> Default for RawAnswers<Q> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Q: Message + Send + 'static> Codec for RawAnswers<Q> {
    type Encode = Q;
    type Decode = Bytes;
    type Encoder = ProstEncoder<Q>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

/// Takes a message's bytes without decoding them.
pub(crate) struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// A unary call of `method` (`/package.Service/Method`) whose answer is
/// returned as its encoded bytes.
pub(crate) async fn call_raw<Q: Message + Send + Sync + 'static>(
    channel: Channel,
    method: &'static str,
    request: Q,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("the channel is not ready: {e}")))?;
    let answer = grpc
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(method),
            RawAnswers::<Q>::default(),
        )
        .await?;
    Ok(answer.into_inner())
}

#[cfg(test)]
mod tests {
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    use super::*;

    const CHECK: &str = "/grpc.health.v1.Health/Check";

    #[tokio::test]
    async fn an_answer_arrives_as_the_bytes_the_server_encoded_and_errors_as_statuses() {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("bench", tonic_health::ServingStatus::Serving)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();

        let serving = call_raw(
            channel.clone(),
            CHECK,
            HealthCheckRequest {
                service: "bench".into(),
            },
        )
        .await
        .unwrap();
        let expected = HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }
        .encode_to_vec();
        assert_eq!(serving, expected);

        let unknown = call_raw(
            channel,
            CHECK,
            HealthCheckRequest {
                service: "nobody".into(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    }
}
