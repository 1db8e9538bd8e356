//! `kpi.scoring.v1.GetScorecardResponse` and `ListScorecardsResponse`,
//! written by hand instead of generated (the build maps the two messages
//! here with `extern_path`), so that a server can answer with scorecards
//! that are already encoded.
//!
//! scoring caches every answer as its encoded bytes. Decoding them for each
//! cached request only for tonic to encode them again was nearly a fifth of
//! scoring's CPU under load (and a leaderboard page decoded the whole
//! board). With [`GetScorecardResponse::pre_encoded`] and
//! [`ListScorecardsResponse::pre_encoded`] the bytes go out as they are;
//! [`EncodedBoard`] cuts a page's scorecards from an encoded board. The
//! wire format is the generated one, and a client decodes into the public
//! fields as usual.

use std::fmt;
use std::ops::Range;

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::scoring::Scorecard;

/// `GetScorecardResponse.scorecard` and `ListScorecardsResponse.scorecards`.
const SCORECARDS: u32 = 1;
/// `ListScorecardsResponse.next_page_token`.
const NEXT_PAGE_TOKEN: u32 = 2;
/// `ListScorecardsResponse.total_size`.
const TOTAL_SIZE: u32 = 3;

/// Response for GetScorecard.
#[derive(Clone, Default, PartialEq)]
pub struct GetScorecardResponse {
    /// The scorecard, as decoded by a client or built by a server.
    pub scorecard: Option<Scorecard>,
    /// An encoded `Scorecard` a server sends in place of `scorecard`
    /// (see [`GetScorecardResponse::pre_encoded`]); never set by decoding.
    pub pre_encoded_scorecard: Option<Bytes>,
}

impl GetScorecardResponse {
    /// A response carrying `scorecard` (an encoded `Scorecard`) as it is.
    /// The bytes are not checked: pass only bytes that an encoder of
    /// `Scorecard` produced.
    pub fn pre_encoded(scorecard: Bytes) -> Self {
        Self {
            scorecard: None,
            pre_encoded_scorecard: Some(scorecard),
        }
    }
}

impl Message for GetScorecardResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some(bytes) = &self.pre_encoded_scorecard {
            encoding::bytes::encode(SCORECARDS, bytes, buf);
        } else if let Some(card) = &self.scorecard {
            encoding::message::encode(SCORECARDS, card, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag != SCORECARDS {
            return encoding::skip_field(wire_type, tag, buf, ctx);
        }
        let card = self.scorecard.get_or_insert_with(Scorecard::default);
        encoding::message::merge(wire_type, card, buf, ctx)
            .map_err(|error| in_field(error, "GetScorecardResponse", "scorecard"))
    }

    fn encoded_len(&self) -> usize {
        if let Some(bytes) = &self.pre_encoded_scorecard {
            encoding::bytes::encoded_len(SCORECARDS, bytes)
        } else if let Some(card) = &self.scorecard {
            encoding::message::encoded_len(SCORECARDS, card)
        } else {
            0
        }
    }

    fn clear(&mut self) {
        self.scorecard = None;
        self.pre_encoded_scorecard = None;
    }
}

impl fmt::Debug for GetScorecardResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("GetScorecardResponse");
        match &self.pre_encoded_scorecard {
            Some(bytes) => out.field("scorecard", &format_args!("<{} bytes>", bytes.len())),
            None => out.field("scorecard", &self.scorecard),
        };
        out.finish()
    }
}

/// Response for ListScorecards.
#[derive(Clone, Default, PartialEq)]
pub struct ListScorecardsResponse {
    /// The scorecards, best total first, as decoded by a client or built by
    /// a server.
    pub scorecards: Vec<Scorecard>,
    /// Token for the next page; empty at the end.
    pub next_page_token: String,
    /// The number of agents ranked in all.
    pub total_size: i32,
    /// Encoded `scorecards` entries, field keys included, that a server
    /// sends before those in `scorecards` (see
    /// [`ListScorecardsResponse::pre_encoded`]); never set by decoding.
    pub pre_encoded_scorecards: Bytes,
}

impl ListScorecardsResponse {
    /// A response whose scorecards are `entries` as they are: encoded
    /// entries of field 1, keys included, such as [`EncodedBoard::entries`].
    pub fn pre_encoded(entries: Bytes, next_page_token: String, total_size: i32) -> Self {
        Self {
            scorecards: Vec::new(),
            next_page_token,
            total_size,
            pre_encoded_scorecards: entries,
        }
    }
}

impl Message for ListScorecardsResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.pre_encoded_scorecards);
        encoding::message::encode_repeated(SCORECARDS, &self.scorecards, buf);
        if !self.next_page_token.is_empty() {
            encoding::string::encode(NEXT_PAGE_TOKEN, &self.next_page_token, buf);
        }
        if self.total_size != 0 {
            encoding::int32::encode(TOTAL_SIZE, &self.total_size, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        const NAME: &str = "ListScorecardsResponse";
        match tag {
            SCORECARDS => {
                encoding::message::merge_repeated(wire_type, &mut self.scorecards, buf, ctx)
                    .map_err(|error| in_field(error, NAME, "scorecards"))
            }
            NEXT_PAGE_TOKEN => {
                encoding::string::merge(wire_type, &mut self.next_page_token, buf, ctx)
                    .map_err(|error| in_field(error, NAME, "next_page_token"))
            }
            TOTAL_SIZE => encoding::int32::merge(wire_type, &mut self.total_size, buf, ctx)
                .map_err(|error| in_field(error, NAME, "total_size")),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let token = if self.next_page_token.is_empty() {
            0
        } else {
            encoding::string::encoded_len(NEXT_PAGE_TOKEN, &self.next_page_token)
        };
        let total = if self.total_size == 0 {
            0
        } else {
            encoding::int32::encoded_len(TOTAL_SIZE, &self.total_size)
        };
        self.pre_encoded_scorecards.len()
            + encoding::message::encoded_len_repeated(SCORECARDS, &self.scorecards)
            + token
            + total
    }

    fn clear(&mut self) {
        self.scorecards.clear();
        self.next_page_token.clear();
        self.total_size = 0;
        self.pre_encoded_scorecards = Bytes::new();
    }
}

impl fmt::Debug for ListScorecardsResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("ListScorecardsResponse");
        if !self.pre_encoded_scorecards.is_empty() {
            let size = self.pre_encoded_scorecards.len();
            out.field("pre_encoded_scorecards", &format_args!("<{size} bytes>"));
        }
        out.field("scorecards", &self.scorecards)
            .field("next_page_token", &self.next_page_token)
            .field("total_size", &self.total_size)
            .finish()
    }
}

/// An encoded `ListScorecardsResponse` that holds nothing but scorecards (a
/// cached leaderboard), indexed by entry, to cut pages from without
/// decoding a scorecard.
#[derive(Debug, Clone)]
pub struct EncodedBoard {
    bytes: Bytes,
    /// Each entry's byte range, its field key included, in order.
    /// Consecutive entries are adjacent.
    spans: Vec<Range<usize>>,
}

impl EncodedBoard {
    /// Indexes `bytes`. Any field but the scorecards, or a malformed entry,
    /// is an error.
    pub fn parse(bytes: Bytes) -> Result<Self, NotABoard> {
        let mut rest = &bytes[..];
        let mut spans = Vec::new();
        while rest.has_remaining() {
            let start = bytes.len() - rest.remaining();
            let (tag, wire_type) = encoding::decode_key(&mut rest).map_err(NotABoard::from)?;
            if tag != SCORECARDS || wire_type != WireType::LengthDelimited {
                return Err(NotABoard(format!(
                    "field {tag} where only scorecards belong"
                )));
            }
            let len = encoding::decode_varint(&mut rest).map_err(NotABoard::from)?;
            let len = usize::try_from(len)
                .ok()
                .filter(|len| *len <= rest.remaining())
                .ok_or_else(|| NotABoard(format!("an entry of {len} bytes runs past the end")))?;
            rest.advance(len);
            spans.push(start..bytes.len() - rest.remaining());
        }
        Ok(Self { bytes, spans })
    }

    /// The number of scorecards.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether it holds no scorecard.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The encoded entries of the scorecards in `range` (none where it runs
    /// past the end), for [`ListScorecardsResponse::pre_encoded`].
    pub fn entries(&self, range: Range<usize>) -> Bytes {
        let spans = self.spans.get(range).unwrap_or_default();
        match (spans.first(), spans.last()) {
            (Some(first), Some(last)) => self.bytes.slice(first.start..last.end),
            _ => Bytes::new(),
        }
    }
}

/// Why bytes are not an [`EncodedBoard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotABoard(String);

impl From<DecodeError> for NotABoard {
    fn from(error: DecodeError) -> Self {
        Self(error.to_string())
    }
}

impl fmt::Display for NotABoard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an encoded leaderboard: {}", self.0)
    }
}

impl std::error::Error for NotABoard {}

/// `error`, located in `message.field` (as generated code does).
fn in_field(mut error: DecodeError, message: &'static str, field: &'static str) -> DecodeError {
    error.push(message, field);
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::IndicatorScore;

    fn card(n: u8) -> Scorecard {
        Scorecard {
            tenant: "acme".into(),
            total: 80.0 + f64::from(n),
            grade: "A".into(),
            indicators: vec![IndicatorScore {
                indicator: "fcr_rate".into(),
                indicator_version: 2,
                display_names: [("en".to_string(), "First-contact resolution".to_string())].into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn board_of(cards: &[Scorecard]) -> Vec<u8> {
        ListScorecardsResponse {
            scorecards: cards.to_vec(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn pre_encoded_bytes_go_out_exactly_as_the_built_message() {
        let built = GetScorecardResponse {
            scorecard: Some(card(1)),
            ..Default::default()
        };
        let passed = GetScorecardResponse::pre_encoded(card(1).encode_to_vec().into());
        assert_eq!(passed.encoded_len(), built.encoded_len());
        assert_eq!(passed.encode_to_vec(), built.encode_to_vec());
    }

    #[test]
    fn a_client_decodes_a_pre_encoded_answer_into_the_scorecard() {
        let passed = GetScorecardResponse::pre_encoded(card(1).encode_to_vec().into());
        let decoded = GetScorecardResponse::decode(passed.encode_to_vec().as_slice());
        assert_eq!(decoded.ok().and_then(|r| r.scorecard), Some(card(1)));
    }

    #[test]
    fn empty_and_unknown_fields_decode_like_the_generated_message() {
        assert_eq!(GetScorecardResponse::default().encode_to_vec(), b"");
        assert_eq!(ListScorecardsResponse::default().encode_to_vec(), b"");
        // Field 9 (varint 7) is unknown here: skipped, the rest kept.
        let mut wire = GetScorecardResponse {
            scorecard: Some(card(1)),
            ..Default::default()
        }
        .encode_to_vec();
        wire.extend([9 << 3, 7]);
        let decoded = GetScorecardResponse::decode(wire.as_slice());
        assert_eq!(decoded.ok().and_then(|r| r.scorecard), Some(card(1)));
        let mut wire = board_of(&[card(1)]);
        wire.extend([9 << 3, 7]);
        let decoded = ListScorecardsResponse::decode(wire.as_slice());
        assert_eq!(decoded.ok().map(|r| r.scorecards), Some(vec![card(1)]));
    }

    #[test]
    fn a_truncated_scorecard_fails_to_decode_naming_the_field() {
        let wire =
            GetScorecardResponse::pre_encoded(card(1).encode_to_vec().into()).encode_to_vec();
        let error = GetScorecardResponse::decode(&wire[..wire.len() - 3]).err();
        assert!(
            error.is_some_and(|e| e.to_string().contains("GetScorecardResponse.scorecard")),
            "a truncated answer must fail naming the field"
        );
    }

    #[test]
    fn a_page_cut_from_a_board_goes_out_as_the_built_page() {
        let cards: Vec<Scorecard> = (0..5).map(card).collect();
        let board = EncodedBoard::parse(board_of(&cards).into());
        let Ok(board) = board else {
            panic!("an encoded board parses: {board:?}");
        };
        assert_eq!(board.len(), 5);
        let passed = ListScorecardsResponse::pre_encoded(board.entries(1..4), "next".into(), 5);
        let built = ListScorecardsResponse {
            scorecards: cards[1..4].to_vec(),
            next_page_token: "next".into(),
            total_size: 5,
            ..Default::default()
        };
        assert_eq!(passed.encoded_len(), built.encoded_len());
        assert_eq!(passed.encode_to_vec(), built.encode_to_vec());
        let decoded = ListScorecardsResponse::decode(passed.encode_to_vec().as_slice());
        assert_eq!(decoded.ok(), Some(built));
        // The whole board, one card, and ranges past the end.
        assert_eq!(&board.entries(0..5)[..], &board_of(&cards)[..]);
        assert_eq!(&board.entries(4..5)[..], &board_of(&cards[4..])[..]);
        assert!(board.entries(5..5).is_empty());
        assert!(board.entries(3..9).is_empty());
    }

    #[test]
    fn an_empty_board_has_no_entries() {
        let board = EncodedBoard::parse(Bytes::new());
        assert!(board.is_ok_and(|b| b.is_empty() && b.entries(0..1).is_empty()));
    }

    #[test]
    fn a_board_with_another_field_or_a_cut_entry_is_refused() {
        let with_token = ListScorecardsResponse {
            scorecards: vec![card(1)],
            next_page_token: "x".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(EncodedBoard::parse(with_token.into()).is_err());
        let whole = board_of(&[card(1), card(2)]);
        let cut = Bytes::copy_from_slice(&whole[..whole.len() - 1]);
        assert!(EncodedBoard::parse(cut).is_err());
    }

    #[test]
    fn debug_shows_the_size_of_pre_encoded_bytes() {
        let passed = GetScorecardResponse::pre_encoded(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            format!("{passed:?}"),
            "GetScorecardResponse { scorecard: <3 bytes> }"
        );
        let page =
            ListScorecardsResponse::pre_encoded(Bytes::from_static(&[1, 2]), String::new(), 4);
        assert_eq!(
            format!("{page:?}"),
            "ListScorecardsResponse { pre_encoded_scorecards: <2 bytes>, scorecards: [], next_page_token: \"\", total_size: 4 }"
        );
    }
}
