//! The protobuf codec of `ArticleService`: prost, with a smaller first
//! encode buffer than tonic's default.
//!
//! tonic gives every response an encode buffer of 8 KiB that lives as long
//! as the response stream. A `WatchArticles` stream sends events of a few
//! hundred bytes for hours, so with thousands of watchers most of that
//! buffer is idle memory (`cargo xtask bench`, streaming section). The
//! buffer starts at 1 KiB and the encoder reserves each message's exact
//! size before writing it, so a large answer (a 16 KB list page) still
//! takes one allocation instead of growing by doubling. Decoding is
//! prost's, unchanged.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
};
use tonic_prost::{ProstCodec, ProstDecoder};

/// First size of a response's encode buffer, in bytes.
pub const ENCODE_BUFFER_BYTES: usize = 1024;
/// Encoded bytes a stream gathers before it yields them (tonic's default).
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// `ProstCodec` with a [`ENCODE_BUFFER_BYTES`] first encode buffer. Named
/// in `build.rs` through `codec_path`.
#[derive(Debug, Clone, Copy)]
pub struct ArticleCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ArticleCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ArticleCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ArticleEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ArticleEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::new().decoder()
    }
}

/// Encodes `T` with prost into a buffer reserved to its exact size.
#[derive(Debug, Clone, Copy)]
pub struct ArticleEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for ArticleEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(ENCODE_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
    }
}
