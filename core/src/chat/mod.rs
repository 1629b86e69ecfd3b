//! The chat of `PROTOCOL.md`: its rules as plain data and functions, and
//! (in the crate's `chat::handler`) the namespace handler that applies them
//! to live sockets.
//!
//! Owns every chat rule and every chat text: the `login` prompt, the
//! lines, the checks of names, rooms and messages, the lobby. Never
//! touches the network itself: the handler asks these functions what to
//! do, then asks the Socket.IO layer to do it.
//!
//! The fixed parts of every line need no JSON escaping (no `"`, `\` or
//! control character), so the handler applies these functions to text that
//! is already JSON-escaped (a client's message exactly as it sent it, lone
//! UTF-16 surrogates included) and gets the escaped line.

pub(crate) mod handler;

use std::fmt;

/// The limits the chat applies to what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// Longest accepted name, in characters (Unicode scalar values), after trimming.
    pub max_name_len: usize,
    /// Longest accepted room name, in characters, after trimming.
    pub max_room_len: usize,
    /// Longest accepted chat message, in characters.
    pub max_message_len: usize,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            max_name_len: 64,
            max_room_len: 64,
            max_message_len: 10_000,
        }
    }
}

/// Where a socket is: a chat room, or the lobby (no room joined).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The socket has joined this room.
    Room(String),
    /// The socket has joined no room.
    Lobby,
}

impl Scope {
    /// The room name, or `None` for the lobby.
    pub fn room(&self) -> Option<&str> {
        match self {
            Scope::Room(r) => Some(r),
            Scope::Lobby => None,
        }
    }
}

/// Why the chat refused what a client (or the host) sent. Its `Display` is
/// the text of the `Error: …` line and of the ack's `error` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `login` without a string name.
    NameNotString,
    /// `login` with a name that is empty after trimming.
    NameEmpty,
    /// `login` with a name over the limit.
    NameTooLong(usize),
    /// `join` without a string room name.
    RoomNotString,
    /// `join` with a room name that is empty after trimming.
    RoomEmpty,
    /// `join` with a room name over the limit.
    RoomTooLong(usize),
    /// `clientMessage` whose text is not a string.
    MessageNotString,
    /// `clientMessage` over the limit.
    MessageTooLong(usize),
    /// The host's login hook refused the name, with its reason.
    LoginRefused(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NameNotString => f.write_str("login needs a name (a string)"),
            Rejection::NameEmpty => f.write_str("the name must not be empty"),
            Rejection::NameTooLong(max) => write!(f, "the name must be at most {max} characters"),
            Rejection::RoomNotString => f.write_str("join needs a room name (a string)"),
            Rejection::RoomEmpty => f.write_str("the room name must not be empty"),
            Rejection::RoomTooLong(max) => {
                write!(f, "the room name must be at most {max} characters")
            }
            Rejection::MessageNotString => f.write_str("a message must be a string"),
            Rejection::MessageTooLong(max) => {
                write!(f, "a message must be at most {max} characters")
            }
            Rejection::LoginRefused(reason) => write!(f, "login refused: {reason}"),
        }
    }
}

impl std::error::Error for Rejection {}

/// The `serverMessage` line that tells the sender about a rejection.
pub fn error_line(r: &Rejection) -> String {
    format!("Error: {r}")
}

/// `serverMessage` to the sender after `login`.
pub fn logged_in_reply(name: &str) -> String {
    format!("Currently logged in as {name}")
}

/// `serverMessage` to the others after `login`.
pub fn logged_in_notice(name: &str) -> String {
    format!("User {name} Logged in")
}

/// `serverMessage` to the sender of `clientMessage`.
pub fn said_reply(text: &str) -> String {
    format!("You said: {text}")
}

/// `serverMessage` to the others for `clientMessage`.
pub fn said_notice(name: &str, text: &str) -> String {
    format!("{name} said: {text}")
}

/// `serverMessage` to the sender after `join`.
pub const JOINED_REPLY: &str = "joined room success!";

/// `serverMessage` to the others when a socket disconnects.
pub fn disconnected_notice(name: &str) -> String {
    format!("User {name} disconnected")
}

/// `serverMessage` to the others when a socket comes back with
/// connection state recovery.
pub fn back_notice(name: &str) -> String {
    format!("User {name} is back")
}

/// Trims and checks a name given at `login` (`None`: not a string).
pub fn check_name(arg: Option<&str>, limits: &ChatLimits) -> Result<String, Rejection> {
    let raw = arg.ok_or(Rejection::NameNotString)?;
    check_text_name(
        raw,
        limits.max_name_len,
        Rejection::NameEmpty,
        Rejection::NameTooLong,
    )
}

/// Trims and checks a room name given at `join` (`None`: not a string).
pub fn check_room(arg: Option<&str>, limits: &ChatLimits) -> Result<String, Rejection> {
    let raw = arg.ok_or(Rejection::RoomNotString)?;
    check_room_str(raw, limits)
}

/// [`check_room`] for a room name the host gave as a string.
pub fn check_room_str(raw: &str, limits: &ChatLimits) -> Result<String, Rejection> {
    check_text_name(
        raw,
        limits.max_room_len,
        Rejection::RoomEmpty,
        Rejection::RoomTooLong,
    )
}

/// Checks the text of a `clientMessage` (kept as sent, not trimmed;
/// `None`: not a string).
pub fn check_message(arg: Option<&str>, limits: &ChatLimits) -> Result<(), Rejection> {
    let text = arg.ok_or(Rejection::MessageNotString)?;
    if exceeds(text, limits.max_message_len) {
        return Err(Rejection::MessageTooLong(limits.max_message_len));
    }
    Ok(())
}

fn check_text_name(
    raw: &str,
    max: usize,
    empty: Rejection,
    too_long: fn(usize) -> Rejection,
) -> Result<String, Rejection> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(empty);
    }
    if exceeds(trimmed, max) {
        return Err(too_long(max));
    }
    Ok(trimmed.to_owned())
}

/// Whether `s` has more than `max` characters, without counting past `max`.
fn exceeds(s: &str, max: usize) -> bool {
    // A char is at most 4 bytes and at least 1: cheap answers first.
    if s.len() <= max {
        return false;
    }
    s.chars().nth(max).is_some()
}

/// What the chat does with an event, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `login`: take a name.
    Login,
    /// `join`: move to a room.
    Join,
    /// `clientMessage`: a line of chat.
    Message,
    /// Anything else: the host's.
    Custom,
}

/// Sorts an event by its name.
pub fn classify(event: &str) -> EventKind {
    match event {
        "login" => EventKind::Login,
        "join" => EventKind::Join,
        "clientMessage" => EventKind::Message,
        _ => EventKind::Custom,
    }
}

/// The event every chat line travels in.
pub const SERVER_MESSAGE: &str = "serverMessage";

/// The event that asks a new socket for its name.
pub const LOGIN_PROMPT: &str = "login";

/// A chat event whose name holds a NUL character (no face could carry it).
pub const NUL_IN_EVENT_NAME: &str = "an event name must not contain NUL characters";

/// The arguments of an event could not be read at all.
pub const UNREADABLE_ARGS: &str = "the event's arguments cannot be read";

/// A custom event's binary placeholders name attachments that are missing.
pub const MISSING_ATTACHMENTS: &str = "the event's binary attachments do not match";

/// The line telling a socket it went over a flood limit.
pub fn flood_line(limit: &str, disconnected: bool) -> String {
    if disconnected {
        format!("Error: too many {limit}, disconnected")
    } else {
        format!("Error: too many {limit}, slow down")
    }
}

/// What the chat knows of one socket: its name and where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatState {
    /// The name given at login, if any.
    pub name: Option<String>,
    /// The room joined, if any (`None`: the lobby).
    pub room: Option<String>,
}

/// A change of room: the room to leave (if any) and the scope to enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Where the socket was.
    pub from: Scope,
    /// Where the socket is now.
    pub to: Scope,
}

impl ChatState {
    /// The name others see: the login name, or the socket id until login.
    pub fn display_name<'a>(&'a self, sid: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(sid)
    }

    /// Where the socket is now.
    pub fn scope(&self) -> Scope {
        match &self.room {
            Some(r) => Scope::Room(r.clone()),
            None => Scope::Lobby,
        }
    }

    /// Applies a (checked) login.
    pub fn login(&mut self, name: String) {
        self.name = Some(name);
    }

    /// Moves to `to` (a room, or the lobby), returning the move.
    pub fn move_to(&mut self, to: Scope) -> Move {
        let from = self.scope();
        self.room = to.room().map(str::to_owned);
        Move { from, to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> ChatLimits {
        ChatLimits::default()
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name(Some("  ann "), &lim()), Ok("ann".into()));
        assert_eq!(check_name(Some("   "), &lim()), Err(Rejection::NameEmpty));
        assert_eq!(check_name(None, &lim()), Err(Rejection::NameNotString));
        let max = "é".repeat(64);
        assert_eq!(check_name(Some(&max), &lim()), Ok(max.clone()));
        let over = "é".repeat(65);
        assert_eq!(
            check_name(Some(&over), &lim()),
            Err(Rejection::NameTooLong(64))
        );
    }

    #[test]
    fn rooms_are_checked_like_names() {
        assert_eq!(check_room(Some(" r1 "), &lim()), Ok("r1".into()));
        assert_eq!(check_room(Some(""), &lim()), Err(Rejection::RoomEmpty));
        assert_eq!(check_room(None, &lim()), Err(Rejection::RoomNotString));
        assert_eq!(
            check_room(Some(&"x".repeat(65)), &lim()),
            Err(Rejection::RoomTooLong(64))
        );
    }

    #[test]
    fn messages_keep_their_text() {
        assert_eq!(check_message(Some(" hi "), &lim()), Ok(()));
        assert_eq!(check_message(Some(""), &lim()), Ok(()));
        assert_eq!(
            check_message(None, &lim()),
            Err(Rejection::MessageNotString)
        );
        let small = ChatLimits {
            max_message_len: 3,
            ..lim()
        };
        assert_eq!(check_message(Some("abc"), &small), Ok(()));
        assert_eq!(
            check_message(Some("abcd"), &small),
            Err(Rejection::MessageTooLong(3))
        );
    }

    #[test]
    fn lines_match_the_chapter() {
        assert_eq!(logged_in_reply("ann"), "Currently logged in as ann");
        assert_eq!(logged_in_notice("ann"), "User ann Logged in");
        assert_eq!(said_reply("hi"), "You said: hi");
        assert_eq!(said_notice("ann", "hi"), "ann said: hi");
        assert_eq!(disconnected_notice("ann"), "User ann disconnected");
        assert_eq!(
            error_line(&Rejection::NameEmpty),
            "Error: the name must not be empty"
        );
        assert_eq!(
            flood_line("events per second", false),
            "Error: too many events per second, slow down"
        );
    }

    #[test]
    fn the_fixed_parts_of_lines_need_no_json_escaping() {
        let lines = [
            logged_in_reply(""),
            logged_in_notice(""),
            said_reply(""),
            said_notice("", ""),
            disconnected_notice(""),
            JOINED_REPLY.to_owned(),
            flood_line("events per second", true),
            error_line(&Rejection::NameTooLong(64)),
        ];
        for l in lines {
            assert!(
                !l.chars().any(|c| c == '"' || c == '\\' || c.is_control()),
                "{l}"
            );
        }
    }

    #[test]
    fn events_are_sorted_by_name() {
        assert_eq!(classify("login"), EventKind::Login);
        assert_eq!(classify("join"), EventKind::Join);
        assert_eq!(classify("clientMessage"), EventKind::Message);
        assert_eq!(classify("my event"), EventKind::Custom);
    }

    #[test]
    fn display_name_falls_back_to_the_id() {
        let mut s = ChatState::default();
        assert_eq!(s.display_name("sid1"), "sid1");
        s.login("bob".into());
        assert_eq!(s.display_name("sid1"), "bob");
    }

    #[test]
    fn moves_go_between_lobby_and_rooms() {
        let mut s = ChatState::default();
        assert_eq!(s.scope(), Scope::Lobby);
        let m = s.move_to(Scope::Room("a".into()));
        assert_eq!(
            m,
            Move {
                from: Scope::Lobby,
                to: Scope::Room("a".into())
            }
        );
        let m = s.move_to(Scope::Room("b".into()));
        assert_eq!(m.from, Scope::Room("a".into()));
        let m = s.move_to(Scope::Lobby);
        assert_eq!(m.from, Scope::Room("b".into()));
        assert_eq!(s.room, None);
    }
}
