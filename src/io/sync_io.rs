//! [`SyncIo`] and [`TokioSyncIo`]: the std IO traits over async IO, through `wait`.

use std::future::poll_fn;
use std::io;
#[cfg(feature = "futures-io")]
use std::io::IoSliceMut;
use std::io::{BufRead, IoSlice, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Waits until `poll` is ready, like [`wait`](crate::wait) on a future polling it.
///
/// While a coroutine unwinds (it is being dropped, or a panic of its own propagates
/// through it) it must not suspend: `wait` would panic, which during an unwind aborts
/// the process, or leave the coroutine suspended mid-unwind. Destructors that write
/// (`BufWriter`, compression encoders) do IO exactly then, so instead `poll` gets one
/// try, with a waker that does nothing: if it is not ready at once the operation fails
/// with an error. A coroutine polled while only the *thread* is panicking (from a
/// destructor during an unrelated unwind) waits as usual.
///
/// Two cases are decided conservatively, since std tells only whether the thread is
/// panicking, not how many panics are in flight (see `context::coroutine_is_unwinding`):
/// a coroutine polled from inside the poll that a `wait` of an unwinding coroutine
/// makes refuses to wait even if it was polled by hand (its Pending might suspend the
/// unwinding coroutine, through a `join`); and a coroutine polled while the thread
/// was already panicking cannot see a panic of its own, and waits.
pub(crate) fn wait_io<T>(
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> io::Result<T> {
    if crate::context::coroutine_is_unwinding() {
        let waker = Waker::from(Arc::new(NoopWake));
        return match poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::Error::other(
                "stackful::io: the IO operation is not ready and cannot wait while the \
                 coroutine is unwinding (being dropped, or panicking)",
            )),
        };
    }
    crate::wait(poll_fn(poll))
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Turns the address and length of a buffer, from a `poll_fill_buf` that returned
/// inside [`wait_io`], back into the slice.
///
/// # Safety
/// `ptr`/`len` describe a slice borrowed from a reader that the caller still borrows
/// mutably for `'a`, and that was not used since the slice was made.
unsafe fn filled<'a>((ptr, len): (*const u8, usize)) -> &'a [u8] {
    // SAFETY: per the caller: the memory is the reader's buffer, borrowed (through
    // the caller's `&'a mut`) for 'a and not touched since it was handed out.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// Synchronous [`Read`], [`BufRead`], [`Write`] and [`Seek`] over the `futures-io`
/// traits [`AsyncRead`](futures_io::AsyncRead),
/// [`AsyncBufRead`](futures_io::AsyncBufRead), [`AsyncWrite`](futures_io::AsyncWrite)
/// and [`AsyncSeek`](futures_io::AsyncSeek) (feature `futures-io`).
///
/// Every operation [`wait`](crate::wait)s on the async one: inside a coroutine
/// ([`stackful`](crate::stackful), [`stream`](crate::stream()), an [`AsyncReader`](super::AsyncReader)
/// or [`AsyncWriter`](super::AsyncWriter)) it suspends the coroutine until the IO is
/// ready; anywhere else it blocks the thread. The wrapped value must be `Unpin`;
/// pin other types with `Box::pin` first.
///
/// ```
/// use futures::io::Cursor;
/// use stackful::io::SyncIo;
/// use std::io::{BufRead, Read};
///
/// let text = futures::executor::block_on(stackful::stackful(|| {
///     // Synchronous code, reading from an async source.
///     let mut reader = SyncIo::new(Cursor::new(b"first line\nsecond line\n".to_vec()));
///     let mut first = String::new();
///     reader.read_line(&mut first).unwrap();
///     let mut rest = String::new();
///     reader.read_to_string(&mut rest).unwrap();
///     (first, rest)
/// }));
/// assert_eq!(text, ("first line\n".to_owned(), "second line\n".to_owned()));
/// ```
///
/// [`close`](SyncIo::close) closes the writer (`AsyncWrite::poll_close`), which std's
/// `Write` has no method for.
#[cfg(feature = "futures-io")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncIo<T> {
    inner: T,
}

#[cfg(feature = "futures-io")]
impl<T> SyncIo<T> {
    /// Wraps an async reader, writer or seeker.
    pub const fn new(inner: T) -> Self {
        SyncIo { inner }
    }

    /// The wrapped value.
    pub const fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped value.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

#[cfg(feature = "futures-io")]
impl<T: futures_io::AsyncWrite + Unpin> SyncIo<T> {
    /// Closes the writer ([`AsyncWrite::poll_close`](futures_io::AsyncWrite::poll_close)),
    /// waiting until it is closed.
    pub fn close(&mut self) -> io::Result<()> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_close(cx))
    }
}

#[cfg(feature = "futures-io")]
impl<T: futures_io::AsyncRead + Unpin> Read for SyncIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_read(cx, buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_read_vectored(cx, bufs))
    }
}

#[cfg(feature = "futures-io")]
impl<T: futures_io::AsyncBufRead + Unpin> BufRead for SyncIo<T> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let inner = &mut self.inner;
        // The slice cannot leave the closure (it is called repeatedly), so its
        // address and length do.
        let raw = wait_io(|cx| {
            Pin::new(&mut *inner)
                .poll_fill_buf(cx)
                .map_ok(|buf| (buf.as_ptr(), buf.len()))
        })?;
        // SAFETY: the slice was borrowed from `self.inner`, which we borrow mutably for
        // the lifetime of the result and have not used since.
        Ok(unsafe { filled(raw) })
    }

    fn consume(&mut self, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

#[cfg(feature = "futures-io")]
impl<T: futures_io::AsyncWrite + Unpin> Write for SyncIo<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_write(cx, buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_flush(cx))
    }
}

#[cfg(feature = "futures-io")]
impl<T: futures_io::AsyncSeek + Unpin> Seek for SyncIo<T> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_seek(cx, pos))
    }
}

/// Synchronous [`Read`], [`BufRead`], [`Write`] and [`Seek`] over tokio's
/// [`AsyncRead`](tokio::io::AsyncRead), [`AsyncBufRead`](tokio::io::AsyncBufRead),
/// [`AsyncWrite`](tokio::io::AsyncWrite) and [`AsyncSeek`](tokio::io::AsyncSeek)
/// (feature `tokio`).
///
/// Every operation [`wait`](crate::wait)s on the async one: inside a coroutine it
/// suspends the coroutine until the IO is ready; anywhere else it blocks the thread.
/// Blocking on tokio IO needs a runtime whose IO driver runs on *another* thread
/// (a multi-thread runtime, e.g. from `spawn_blocking`): on a `current_thread`
/// runtime's own thread nothing would drive the socket while the thread blocks. Run
/// such code inside [`stackful`](crate::stackful) on the runtime instead.
///
/// The wrapped value must be `Unpin`; pin other types with `Box::pin` first.
///
/// ```
/// use stackful::io::TokioSyncIo;
/// use std::io::{BufRead, BufReader, Write};
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// rt.block_on(async {
///     // An in-memory pipe (a `TcpStream` works the same way).
///     let (client, server) = tokio::io::duplex(64);
///     // A synchronous echo of one line, on a coroutine.
///     let echo = stackful::stackful(move || {
///         let mut conn = BufReader::new(TokioSyncIo::new(server));
///         let mut line = String::new();
///         conn.read_line(&mut line)?;
///         conn.get_mut().write_all(line.to_uppercase().as_bytes())
///     });
///     let ask = async move {
///         use tokio::io::{AsyncReadExt, AsyncWriteExt};
///         let mut client = client;
///         client.write_all(b"hello\n").await?;
///         let mut answer = [0; 6];
///         client.read_exact(&mut answer).await?;
///         Ok::<_, std::io::Error>(answer)
///     };
///     let (echoed, answer) = tokio::join!(echo, ask);
///     echoed?;
///     assert_eq!(&answer?, b"HELLO\n");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// [`shutdown`](TokioSyncIo::shutdown) shuts the writer down
/// (`AsyncWrite::poll_shutdown`), which std's `Write` has no method for.
#[cfg(feature = "tokio")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokioSyncIo<T> {
    inner: T,
}

#[cfg(feature = "tokio")]
impl<T> TokioSyncIo<T> {
    /// Wraps an async reader, writer or seeker.
    pub const fn new(inner: T) -> Self {
        TokioSyncIo { inner }
    }

    /// The wrapped value.
    pub const fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped value.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncWrite + Unpin> TokioSyncIo<T> {
    /// Shuts the writer down
    /// ([`AsyncWrite::poll_shutdown`](tokio::io::AsyncWrite::poll_shutdown)), waiting
    /// until it is done.
    pub fn shutdown(&mut self) -> io::Result<()> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_shutdown(cx))
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncRead + Unpin> Read for TokioSyncIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = tokio::io::ReadBuf::new(buf);
        wait_io(|cx| Pin::new(&mut self.inner).poll_read(cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncBufRead + Unpin> BufRead for TokioSyncIo<T> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let inner = &mut self.inner;
        // As for `SyncIo`: the slice cannot leave the closure, its parts do.
        let raw = wait_io(|cx| {
            Pin::new(&mut *inner)
                .poll_fill_buf(cx)
                .map_ok(|buf| (buf.as_ptr(), buf.len()))
        })?;
        // SAFETY: the slice was borrowed from `self.inner`, which we borrow mutably for
        // the lifetime of the result and have not used since.
        Ok(unsafe { filled(raw) })
    }

    fn consume(&mut self, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncWrite + Unpin> Write for TokioSyncIo<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_write(cx, buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        wait_io(|cx| Pin::new(&mut self.inner).poll_flush(cx))
    }
}

#[cfg(feature = "tokio")]
impl<T: tokio::io::AsyncSeek + Unpin> Seek for TokioSyncIo<T> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let inner = &mut self.inner;
        // As tokio's own `seek` does: finish a seek still in progress, start ours,
        // wait for it.
        wait_io(|cx| Pin::new(&mut *inner).poll_complete(cx))?;
        Pin::new(&mut *inner).start_seek(pos)?;
        wait_io(|cx| Pin::new(&mut *inner).poll_complete(cx))
    }
}
