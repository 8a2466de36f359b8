//! Paged listings as streams: one request per page, issued when the consumer asks for more;
//! nothing collects all pages.

use std::collections::HashSet;

use futures_util::stream::{self, Stream, TryStreamExt};

use crate::error::{Error, Result};

enum Cursor {
    Start,
    Next(String),
    Done,
}

/// A stream of pages. `fetch(token)` returns one page and the next page's token (absent or empty
/// at the end).
pub fn pages<T, F, Fut>(mut fetch: F) -> impl Stream<Item = Result<Vec<T>>> + Send
where
    T: Send,
    F: FnMut(Option<String>) -> Fut + Send,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send,
{
    // The tokens given so far travel with the cursor: one given twice would make the listing
    // go round forever.
    let start = (Cursor::Start, HashSet::new());
    stream::try_unfold(start, move |(cursor, mut seen)| {
        let token = match cursor {
            Cursor::Start => Some(None),
            Cursor::Next(t) => Some(Some(t)),
            Cursor::Done => None,
        };
        let fut = token.map(&mut fetch);
        async move {
            let Some(fut) = fut else { return Ok(None) };
            let (items, next) = fut.await?;
            let cursor = match next.filter(|t| !t.is_empty()) {
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(Error::Protocol {
                        call: "a paged listing".into(),
                        server: "the server".into(),
                        detail: format!(
                            "the page token {t:?} came a second time: the listing would never end"
                        ),
                    });
                }
                Some(t) => Cursor::Next(t),
                None => Cursor::Done,
            };
            Ok(Some((items, (cursor, seen))))
        }
    })
}

/// The items of [`pages`], one at a time.
pub fn items<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T>> + Send
where
    T: Send,
    F: FnMut(Option<String>) -> Fut + Send,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send,
{
    pages(fetch)
        .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
}
