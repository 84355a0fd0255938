//! [`AsyncReader`]: an async reader running a synchronous [`Read`] on a coroutine.

use crate::fiber::OnLeak;
use crate::{Builder, StackfulStream, StreamHandle};
use std::cell::Cell;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// The buffer size of [`AsyncReader::new`] and [`AsyncWriter::new`](super::AsyncWriter::new).
pub const DEFAULT_BUF_SIZE: usize = 8 * 1024;

/// What the coroutine hands back after a read: the buffer and the read's result.
type Reply = (Vec<u8>, io::Result<usize>);

/// An async reader whose data comes from a synchronous [`Read`] running on a
/// coroutine of its own: hand a synchronous decoder to async code.
///
/// It implements [`futures_io::AsyncRead`] and [`futures_io::AsyncBufRead`] (feature
/// `futures-io`) and tokio's [`AsyncRead`](tokio::io::AsyncRead) and
/// [`AsyncBufRead`](tokio::io::AsyncBufRead) (feature `tokio`). When the buffer is
/// empty, a poll resumes the coroutine, which calls `reader.read` on an internal
/// buffer of its own. If that read [`wait`](crate::wait)s on a pending future (for
/// example because it reads from a [`SyncIo`](super::SyncIo) or
/// [`TokioSyncIo`](super::TokioSyncIo) over a socket), the coroutine is suspended and
/// the poll returns `Pending`; the next poll resumes the read where it stopped, with
/// that poll's task context.
///
/// ```
/// # #[cfg(feature = "futures-io")] {
/// use futures::io::{AsyncReadExt, Cursor};
/// use stackful::io::{AsyncReader, SyncIo};
/// use std::io::Read;
///
/// /// A synchronous decoder: turns every byte into its hex digits.
/// struct Hex<R>(R, Option<u8>);
///
/// impl<R: Read> Read for Hex<R> {
///     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
///         let mut n = 0;
///         while n < buf.len() {
///             if let Some(low) = self.1.take() {
///                 buf[n] = low;
///                 n += 1;
///                 continue;
///             }
///             let mut byte = [0];
///             if n > 0 || self.0.read(&mut byte)? == 0 {
///                 break;
///             }
///             let hex = format!("{:02x}", byte[0]).into_bytes();
///             buf[n] = hex[0];
///             self.1 = Some(hex[1]);
///             n += 1;
///         }
///         Ok(n)
///     }
/// }
///
/// // An async source, read by the synchronous decoder, read by async code.
/// let source = SyncIo::new(Cursor::new(vec![0xca, 0xfe]));
/// let mut decoded = AsyncReader::new(Hex(source, None));
/// let mut text = String::new();
/// futures::executor::block_on(decoded.read_to_string(&mut text))?;
/// assert_eq!(text, "cafe");
/// # }
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// * Reads that fail with [`ErrorKind::Interrupted`](io::ErrorKind::Interrupted) are
///   retried; other errors are returned by the poll that sees them.
/// * A panic in the reader propagates out of the poll with its original payload;
///   later polls fail with an [`io::Error`].
/// * Dropping it while a read is suspended unwinds the coroutine: the reader and the
///   future it waits on are dropped.
/// * It is `!Send`, like every coroutine: use it on single-threaded executors or
///   `spawn_local`.
pub struct AsyncReader<'a, R> {
    coroutine: StackfulStream<'a, Reply>,
    /// Where the (empty) buffer goes to the coroutine for its next read.
    handoff: Rc<Cell<Vec<u8>>>,
    /// The buffer, while no read is in progress; `buf[pos..filled]` is unread data.
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// The buffer is with the coroutine, which is reading into it.
    reading: bool,
    /// The reader lives (and is dropped) on the coroutine's stack.
    _reader: PhantomData<R>,
}

// The reader lives on the coroutine's own stack, never inside this value.
impl<R> Unpin for AsyncReader<'_, R> {}

impl<'a, R: Read + 'static> AsyncReader<'a, R> {
    /// Runs `reader` on a coroutine with a default stack and a buffer of
    /// [`DEFAULT_BUF_SIZE`] bytes.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncReader::with_builder)).
    #[track_caller]
    pub fn new(reader: R) -> Self {
        Self::with_capacity(DEFAULT_BUF_SIZE, reader)
    }

    /// Runs `reader` on a coroutine with a default stack and a buffer of `capacity`
    /// bytes (at least 1).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncReader::with_builder)).
    #[track_caller]
    pub fn with_capacity(capacity: usize, reader: R) -> Self {
        Self::expect(Self::with_builder(Builder::new(), capacity, move || {
            Ok(reader)
        }))
    }

    /// Makes the reader on the coroutine, with `make`, when it is first polled; then
    /// runs it as [`new`](AsyncReader::new) does.
    ///
    /// Use it for readers whose constructor already reads: flate2's
    /// `GzDecoder::new` reads the gzip header, and outside a coroutine that read
    /// would block the thread (on a tokio `current_thread` runtime, forever). An
    /// error from `make` is returned by every read.
    ///
    /// ```
    /// # #[cfg(feature = "futures-io")] {
    /// use flate2::read::GzDecoder;
    /// use futures::io::{AsyncReadExt, Cursor};
    /// use stackful::io::{AsyncReader, SyncIo};
    ///
    /// # let mut gz = flate2::write::GzEncoder::new(Vec::new(), Default::default());
    /// # std::io::Write::write_all(&mut gz, b"hello")?;
    /// # let compressed = gz.finish()?;
    /// let source = SyncIo::new(Cursor::new(compressed)); // any async source
    /// let mut text = String::new();
    /// futures::executor::block_on(async {
    ///     let mut gunzip = AsyncReader::lazy(move || Ok(GzDecoder::new(source)));
    ///     gunzip.read_to_string(&mut text).await
    /// })?;
    /// assert_eq!(text, "hello");
    /// # }
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncReader::with_builder)).
    #[track_caller]
    pub fn lazy<M>(make: M) -> Self
    where
        M: FnOnce() -> io::Result<R> + 'static,
    {
        Self::expect(Self::with_builder(Builder::new(), DEFAULT_BUF_SIZE, make))
    }

    /// Makes the reader with `make` on a coroutine made by `builder` (e.g. with a
    /// larger stack for a deeply recursive decoder), when it is first polled, with a
    /// buffer of `capacity` bytes (at least 1). An error from `make` is returned by
    /// every read.
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::stream`]).
    #[track_caller]
    pub fn with_builder<M>(builder: Builder, capacity: usize, make: M) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<R> + 'static,
    {
        // SAFETY: everything the coroutine can reach is 'static (the bounds above, and
        // the handoff cell is shared through an Rc of 'static data).
        unsafe { AsyncReader::build(builder, capacity, make, OnLeak::Leak) }
    }

    fn expect(made: io::Result<Self>) -> Self {
        match made {
            Ok(r) => r,
            Err(e) => crate::allocation_failed("AsyncReader::new", e),
        }
    }
}

impl<'a, R: Read + 'a> AsyncReader<'a, R> {
    /// [`with_builder`](AsyncReader::with_builder) for a reader (or `make`) that
    /// borrows for `'a`.
    ///
    /// # Safety
    /// As for [`StackfulStream::new_unchecked`](crate::StackfulStream::new_unchecked):
    /// the reader must be dropped before anything it or `make` borrows ends; it must
    /// not be leaked while a read is suspended.
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::stream`]).
    #[track_caller]
    pub unsafe fn with_builder_unchecked<M>(
        builder: Builder,
        capacity: usize,
        make: M,
    ) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<R> + 'a,
    {
        // SAFETY: forwarded to our caller; dropping it unfinished aborts rather than
        // leaks.
        unsafe { AsyncReader::build(builder, capacity, make, OnLeak::Abort) }
    }

    /// # Safety
    /// As for `StackfulStream::on_stack` with `on_leak`.
    #[cfg_attr(feature = "registry", track_caller)]
    unsafe fn build<M>(
        builder: Builder,
        capacity: usize,
        make: M,
        on_leak: OnLeak,
    ) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<R> + 'a,
    {
        let handoff = Rc::new(Cell::new(Vec::new()));
        let theirs = Rc::clone(&handoff);
        let stack = builder.stack()?;
        let body = move |y: &StreamHandle<Reply>| {
            let mut reader = match make() {
                Ok(reader) => reader,
                Err(e) => fail_forever(
                    e,
                    || theirs.take(),
                    |buf, err| y.yield_item((buf, Err(err))),
                ),
            };
            loop {
                let mut buf = theirs.take();
                let result = loop {
                    match reader.read(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        result => break result,
                    }
                };
                y.yield_item((buf, result));
            }
        };
        // SAFETY: forwarded to our caller.
        let coroutine =
            unsafe { StackfulStream::on_stack(stack, on_leak, body)? }.budget_from(&builder);
        Ok(AsyncReader {
            coroutine,
            handoff,
            buf: vec![0; capacity.max(1)],
            pos: 0,
            filled: 0,
            reading: false,
            _reader: PhantomData,
        })
    }
}

/// Answers every request with `first`, then with copies of it (an `io::Error` is not
/// `Clone`: same kind and message). `next` takes the next request's buffer; `reply`
/// hands it back with the error and returns when the next request comes.
pub(super) fn fail_forever<B>(
    first: io::Error,
    mut next: impl FnMut() -> B,
    mut reply: impl FnMut(B, io::Error),
) -> ! {
    let (kind, message) = (first.kind(), first.to_string());
    let mut first = Some(first);
    loop {
        let buf = next();
        let err = first
            .take()
            .unwrap_or_else(|| io::Error::new(kind, message.clone()));
        reply(buf, err);
    }
}

impl<R> AsyncReader<'_, R> {
    /// The data read but not yet consumed.
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// Makes `buffer()` non-empty, or empty at the end of the data, running the
    /// reader if needed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos < self.filled {
            return Poll::Ready(Ok(()));
        }
        if self.coroutine.is_complete() {
            return Poll::Ready(Err(io::Error::other(
                "stackful::io::AsyncReader: the reader panicked in an earlier poll",
            )));
        }
        if !self.reading {
            self.handoff.set(std::mem::take(&mut self.buf));
            self.pos = 0;
            self.filled = 0;
            self.reading = true;
        }
        let reply = ready!(futures_core::Stream::poll_next(
            Pin::new(&mut self.coroutine),
            cx
        ));
        let Some((buf, result)) = reply else {
            unreachable!("the coroutine of an AsyncReader never returns")
        };
        self.reading = false;
        let result = result.map(|n| self.filled = n.min(buf.len()));
        self.buf = buf;
        Poll::Ready(result)
    }

    /// Copies buffered data to `out`, reading more first if the buffer is empty.
    #[cfg(feature = "futures-io")]
    fn poll_copy(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_fill(cx))?;
        let data = self.buffer();
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.pos += n;
        Poll::Ready(Ok(n))
    }

    fn consume(&mut self, amt: usize) {
        self.pos = self.filled.min(self.pos + amt);
    }
}

impl<R> std::fmt::Debug for AsyncReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncReader")
            .field("buffered", &(self.filled - self.pos))
            .field("reading", &self.reading)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "futures-io")]
impl<R> futures_io::AsyncRead for AsyncReader<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_copy(cx, buf)
    }
}

#[cfg(feature = "futures-io")]
impl<R> futures_io::AsyncBufRead for AsyncReader<'_, R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_fill(cx))?;
        Poll::Ready(Ok(this.buffer()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt)
    }
}

#[cfg(feature = "tokio")]
impl<R> tokio::io::AsyncRead for AsyncReader<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_fill(cx))?;
        let data = this.buffer();
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data[..n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio")]
impl<R> tokio::io::AsyncBufRead for AsyncReader<'_, R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        ready!(this.poll_fill(cx))?;
        Poll::Ready(Ok(this.buffer()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt)
    }
}
