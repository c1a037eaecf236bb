//! Step-by-step fake switch for tests that play FreeSWITCH themselves: read the next command,
//! answer it (or not), send exactly the events the test wants, when it wants.
//!
//! Built on freeswitch-esl-tokio's `MockConnection` (`read_command`, `send_raw`), with every
//! frame rendered in FreeSWITCH's exact format by [`Channel`] and [`super::wire`] instead of
//! the mock's own helpers (which send a literal `+OK` connect reply and encode more widely).
//! Limitation inherited from `MockConnection::read_command`: commands with a `Content-Length`
//! body cannot be read (use [`super::dial`] for those).
//!
//! ```no_run
//! use callflowd::fakeswitch::{ChannelProfile, ManualSwitch};
//! # async fn demo(addr: std::net::SocketAddr) -> std::io::Result<()> {
//! let mut fs = ManualSwitch::dial(addr, ChannelProfile::sip("1000")).await?;
//! fs.expect("connect").await?;
//! fs.send_connect_reply().await?;
//! fs.expect("myevents").await?;
//! fs.reply("+OK Events Enabled").await?;
//! let cmd = fs.expect("sendmsg").await?;
//! fs.reply("+OK").await?;
//! let uuid = cmd.header("event-uuid").unwrap_or("x").to_string();
//! fs.send_execute("answer", "", &uuid).await?;
//! // ... and never send the EXECUTE_COMPLETE, to test the controller's timeout.
//! # Ok(()) }
//! ```

use super::channel::{self, Channel, ChannelProfile, EventShape, Format, NO_VARS, WITH_VARS};
use super::command;
use super::transcript::Received;
use super::wire;
use bytes::BytesMut;
use freeswitch_esl_tokio::mock::MockConnection;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpStream;

/// A hand-driven fake switch on one outbound connection. See the module doc.
pub struct ManualSwitch {
    conn: MockConnection,
    channel: Channel,
    fmt: Format,
    t0: Instant,
    /// Every command read so far.
    pub received: Vec<Received>,
}

impl ManualSwitch {
    /// Connects to the controller like the `socket` app (TCP_NODELAY).
    pub async fn dial(controller: SocketAddr, profile: ChannelProfile) -> io::Result<Self> {
        let stream = TcpStream::connect(controller).await?;
        stream.set_nodelay(true)?;
        Ok(Self::from_stream(stream, profile))
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream, profile: ChannelProfile) -> Self {
        ManualSwitch {
            conn: MockConnection::from_stream(stream),
            channel: Channel::new(&profile),
            fmt: Format::Plain,
            t0: Instant::now(),
            received: Vec::new(),
        }
    }

    /// The channel whose events are sent (read or change its variables).
    pub fn channel(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Plain or JSON events from now on (what `myevents json` would select).
    pub fn set_format(&mut self, fmt: Format) {
        self.fmt = fmt;
    }

    /// Reads the next command. Errors: EOF (the controller closed), or `Unsupported` for a
    /// command carrying a body (MockConnection cannot read it).
    pub async fn read_command(&mut self) -> io::Result<Received> {
        let text = self.conn.read_command().await?;
        let mut buf = BytesMut::from(text.as_bytes());
        let raw = match command::parse_next(&mut buf) {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "command with a Content-Length body: ManualSwitch cannot read bodies",
                ));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        };
        let r = Received {
            index: self.received.len(),
            at: self.t0.elapsed(),
            line: raw.line,
            headers: raw.headers,
            body: raw.body,
            reply: None,
        };
        self.received.push(r.clone());
        Ok(r)
    }

    /// Reads the next command and checks that its line starts with `verb`.
    pub async fn expect(&mut self, verb: &str) -> io::Result<Received> {
        let r = self.read_command().await?;
        if !r
            .line
            .to_ascii_lowercase()
            .starts_with(&verb.to_ascii_lowercase())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected `{verb}`, got `{}`", r.line),
            ));
        }
        Ok(r)
    }

    /// Sends the `connect` reply (CHANNEL_DATA, exact FreeSWITCH shape).
    pub async fn send_connect_reply(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        self.channel.render_connect_reply(&mut out);
        self.send_bytes(out).await
    }

    /// Sends `Content-Type: command/reply` with `Reply-Text: <text>`.
    pub async fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut out = Vec::new();
        wire::command_reply(&mut out, text);
        self.send_bytes(out).await
    }

    /// Sends an `api/response` with `body`.
    pub async fn api_response(&mut self, body: &str) -> io::Result<()> {
        let mut out = Vec::new();
        wire::api_response(&mut out, body);
        self.send_bytes(out).await
    }

    /// Sends a channel event with all variables plus `tail` headers.
    pub async fn send_event(&mut self, name: &str, tail: &[(&str, &str)]) -> io::Result<()> {
        self.send_shaped(name, channel::AT_EXEC, WITH_VARS, tail)
            .await
    }

    async fn send_shaped(
        &mut self,
        name: &str,
        at: channel::Calling,
        shape: EventShape,
        tail: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut out = Vec::new();
        self.channel
            .render_event(&mut out, self.fmt, name, at, shape, tail);
        self.send_bytes(out).await
    }

    /// CHANNEL_EXECUTE for `app` (`arg` may be empty) with `Application-UUID: app_uuid`.
    pub async fn send_execute(&mut self, app: &str, arg: &str, app_uuid: &str) -> io::Result<()> {
        self.channel.set_var("current_application", app);
        self.channel.set_var("current_application_data", arg);
        let mut tail = vec![("Application", app)];
        if !arg.is_empty() {
            tail.push(("Application-Data", arg));
        }
        tail.push(("Application-UUID", app_uuid));
        self.send_shaped("CHANNEL_EXECUTE", channel::AT_EXEC, WITH_VARS, &tail)
            .await
    }

    /// CHANNEL_EXECUTE_COMPLETE for `app` with `Application-Response: response`.
    pub async fn send_execute_complete(
        &mut self,
        app: &str,
        arg: &str,
        app_uuid: &str,
        response: &str,
    ) -> io::Result<()> {
        self.channel
            .set_var("current_application_response", response);
        let mut tail = vec![("Application", app)];
        if !arg.is_empty() {
            tail.push(("Application-Data", arg));
        }
        tail.push(("Application-Response", response));
        tail.push(("Application-UUID", app_uuid));
        self.send_shaped(
            "CHANNEL_EXECUTE_COMPLETE",
            channel::AT_EXEC_DONE,
            WITH_VARS,
            &tail,
        )
        .await
    }

    /// CHANNEL_ANSWER (and the channel becomes answered).
    pub async fn send_answer(&mut self) -> io::Result<()> {
        self.channel.begin_answer();
        self.send_shaped("CHANNEL_ANSWER", channel::AT_ANSWER, WITH_VARS, &[])
            .await?;
        self.channel.end_answer();
        Ok(())
    }

    /// A DTMF event (basic channel data only, as FreeSWITCH sends it).
    pub async fn send_dtmf(&mut self, digit: char) -> io::Result<()> {
        let d = digit.to_string();
        let source = self.channel.dtmf_source();
        self.send_shaped(
            "DTMF",
            channel::AT_DTMF,
            NO_VARS,
            &[
                ("DTMF-Digit", &d),
                ("DTMF-Duration", "2000"),
                ("DTMF-Source", source),
            ],
        )
        .await
    }

    /// CHANNEL_HANGUP only (the channel is marked hung up).
    pub async fn send_hangup(&mut self, cause: &str) -> io::Result<()> {
        self.channel.hang_up(cause);
        self.send_shaped("CHANNEL_HANGUP", channel::AT_HANGUP, WITH_VARS, &[])
            .await
    }

    /// The rest of the closing sequence after CHANNEL_HANGUP (and any app completions):
    /// CHANNEL_UNPARK, EXECUTE_COMPLETE(socket), CS_HANGUP, CS_REPORTING,
    /// CHANNEL_HANGUP_COMPLETE, then the linger notice (`Some(secs)`, -1 = forever) or the
    /// disconnect notice (`None`, then close the connection yourself).
    pub async fn send_closing_sequence(&mut self, linger: Option<i64>) -> io::Result<()> {
        let mut out = Vec::new();
        let fmt = self.fmt;
        let ch = &mut self.channel;
        ch.unset_var("current_loop");
        ch.unset_var("total_loops");
        ch.render_event(
            &mut out,
            fmt,
            "CHANNEL_UNPARK",
            channel::AT_UNPARK,
            WITH_VARS,
            &[],
        );
        let resp = ch
            .var("current_application_response")
            .unwrap_or("_none_")
            .to_string();
        let uuid = channel::new_uuid();
        ch.render_event(
            &mut out,
            fmt,
            "CHANNEL_EXECUTE_COMPLETE",
            channel::AT_EXEC_DONE,
            WITH_VARS,
            &[
                ("Application", "socket"),
                ("Application-Data", "127.0.0.1:8084 async full"),
                ("Application-Response", &resp),
                ("Application-UUID", &uuid),
            ],
        );
        ch.enter_cs_hangup();
        ch.render_event(
            &mut out,
            fmt,
            "CHANNEL_STATE",
            channel::AT_STATE,
            NO_VARS,
            &[],
        );
        ch.enter_cs_reporting();
        ch.render_event(
            &mut out,
            fmt,
            "CHANNEL_STATE",
            channel::AT_STATE,
            NO_VARS,
            &[],
        );
        ch.add_cdr_vars(None, true);
        ch.render_event(
            &mut out,
            fmt,
            "CHANNEL_HANGUP_COMPLETE",
            channel::AT_REPORTING,
            EventShape {
                vars: true,
                leading_hangup_cause: true,
            },
            &[],
        );
        let (u, n) = (ch.uuid().to_string(), ch.channel_name().to_string());
        match linger {
            Some(secs) => wire::linger_notice(&mut out, &u, &n, secs),
            None => wire::disconnect_notice(&mut out, &u),
        }
        self.send_bytes(out).await
    }

    /// The `Content-Disposition: disconnect` notice FreeSWITCH sends before closing.
    pub async fn send_disconnect_notice(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        wire::disconnect_notice(&mut out, self.channel.uuid());
        self.send_bytes(out).await
    }

    /// Writes text verbatim (hand-made or deliberately broken frames).
    pub async fn send_raw(&mut self, text: &str) -> io::Result<()> {
        self.conn.send_raw(text).await
    }

    async fn send_bytes(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        // Everything the encoder produces is ASCII (values are percent-encoded), except
        // JSON events and api bodies, which carry the caller's UTF-8 as is.
        let text = String::from_utf8(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        self.conn.send_raw(&text).await
    }

    /// Closes the connection (as after the disconnect notice).
    pub async fn close(self) {
        self.conn.drop_connection().await;
    }
}
