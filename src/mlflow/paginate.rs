//! Paged listings as streams: one request per page, issued when the consumer asks for more;
//! nothing collects all pages.

use futures_util::stream::{self, Stream, TryStreamExt};

use crate::error::Result;

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
    stream::try_unfold(Cursor::Start, move |cursor| {
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
                Some(t) => Cursor::Next(t),
                None => Cursor::Done,
            };
            Ok(Some((items, cursor)))
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
