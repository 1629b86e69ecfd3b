//! The chat rules of `PROTOCOL.md`, as plain data and functions.
//!
//! Nothing here touches the network: the socket layer
//! (the crate's `session` module) asks these functions what to do and then
//! does it.
//! That keeps every rule of the protocol in one place, testable directly.

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

/// Trims and checks a name given at `login` (or by the host).
pub fn check_name(
    arg: Option<&serde_json::Value>,
    limits: &ChatLimits,
) -> Result<String, Rejection> {
    let raw = arg
        .and_then(|v| v.as_str())
        .ok_or(Rejection::NameNotString)?;
    check_text_name(
        raw,
        limits.max_name_len,
        Rejection::NameEmpty,
        Rejection::NameTooLong,
    )
}

/// Trims and checks a room name given at `join` (or by the host).
pub fn check_room(
    arg: Option<&serde_json::Value>,
    limits: &ChatLimits,
) -> Result<String, Rejection> {
    let raw = arg
        .and_then(|v| v.as_str())
        .ok_or(Rejection::RoomNotString)?;
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

/// Checks the text of a `clientMessage` (kept as sent, not trimmed).
pub fn check_message<'a>(
    arg: Option<&'a serde_json::Value>,
    limits: &ChatLimits,
) -> Result<&'a str, Rejection> {
    let text = arg
        .and_then(|v| v.as_str())
        .ok_or(Rejection::MessageNotString)?;
    if exceeds(text, limits.max_message_len) {
        return Err(Rejection::MessageTooLong(limits.max_message_len));
    }
    Ok(text)
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

/// An event a client sent, read and checked: what the chat will do.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<'a> {
    /// `login` with a checked, trimmed name (or why not).
    Login(Result<String, Rejection>),
    /// `join` with a checked, trimmed room (or why not).
    Join(Result<String, Rejection>),
    /// `clientMessage` with its text (or why not).
    Message(Result<&'a str, Rejection>),
    /// Any other event, for the host.
    Custom {
        /// The event name.
        event: &'a str,
        /// Its arguments (JSON with Socket.IO binary placeholders).
        args: &'a [serde_json::Value],
    },
}

/// Why an event's payload could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable;

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event's arguments cannot be read")
    }
}

/// Parses a Socket.IO event payload (`["event", arg, ...]`).
pub fn read_event(text: &str) -> Result<Vec<serde_json::Value>, Unreadable> {
    let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| Unreadable)?;
    match items.first() {
        Some(serde_json::Value::String(_)) => Ok(items),
        _ => Err(Unreadable),
    }
}

/// Reads a parsed event (see [`read_event`]) as the chat sees it.
pub fn classify<'a>(items: &'a [serde_json::Value], limits: &ChatLimits) -> Option<Inbound<'a>> {
    let event = items.first()?.as_str()?;
    let arg = items.get(1);
    Some(match event {
        "login" => Inbound::Login(check_name(arg, limits)),
        "join" => Inbound::Join(check_room(arg, limits)),
        "clientMessage" => Inbound::Message(check_message(arg, limits)),
        _ => Inbound::Custom {
            event,
            args: &items[1..],
        },
    })
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
    use serde_json::json;

    fn lim() -> ChatLimits {
        ChatLimits::default()
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name(Some(&json!("  ann ")), &lim()), Ok("ann".into()));
        assert_eq!(
            check_name(Some(&json!("   ")), &lim()),
            Err(Rejection::NameEmpty)
        );
        assert_eq!(
            check_name(Some(&json!(null)), &lim()),
            Err(Rejection::NameNotString)
        );
        assert_eq!(check_name(None, &lim()), Err(Rejection::NameNotString));
        assert_eq!(
            check_name(Some(&json!(5)), &lim()),
            Err(Rejection::NameNotString)
        );
        let max = "é".repeat(64);
        assert_eq!(check_name(Some(&json!(max)), &lim()), Ok(max.clone()));
        let over = "é".repeat(65);
        assert_eq!(
            check_name(Some(&json!(over)), &lim()),
            Err(Rejection::NameTooLong(64))
        );
    }

    #[test]
    fn rooms_are_checked_like_names() {
        assert_eq!(check_room(Some(&json!(" r1 ")), &lim()), Ok("r1".into()));
        assert_eq!(
            check_room(Some(&json!("")), &lim()),
            Err(Rejection::RoomEmpty)
        );
        assert_eq!(
            check_room(Some(&json!(["r"])), &lim()),
            Err(Rejection::RoomNotString)
        );
        assert_eq!(
            check_room(Some(&json!("x".repeat(65))), &lim()),
            Err(Rejection::RoomTooLong(64))
        );
    }

    #[test]
    fn messages_keep_their_text() {
        assert_eq!(check_message(Some(&json!(" hi ")), &lim()), Ok(" hi "));
        assert_eq!(check_message(Some(&json!("")), &lim()), Ok(""));
        assert_eq!(
            check_message(Some(&json!({})), &lim()),
            Err(Rejection::MessageNotString)
        );
        let small = ChatLimits {
            max_message_len: 3,
            ..lim()
        };
        assert_eq!(check_message(Some(&json!("abc")), &small), Ok("abc"));
        assert_eq!(
            check_message(Some(&json!("abcd")), &small),
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
    }

    #[test]
    fn events_are_read_and_classified() {
        let items = read_event(r#"["login"," ann "]"#).unwrap();
        assert_eq!(
            classify(&items, &lim()),
            Some(Inbound::Login(Ok("ann".into())))
        );
        let items = read_event(r#"["clientMessage",3]"#).unwrap();
        assert_eq!(
            classify(&items, &lim()),
            Some(Inbound::Message(Err(Rejection::MessageNotString)))
        );
        let items = read_event(r#"["my event","Hello world."]"#).unwrap();
        assert!(
            matches!(classify(&items, &lim()), Some(Inbound::Custom { event: "my event", args }) if args.len() == 1)
        );
        assert_eq!(read_event("[1]"), Err(Unreadable));
        assert_eq!(read_event("{}"), Err(Unreadable));
        assert_eq!(
            read_event(&format!("{}{}", "[".repeat(200), "]".repeat(200))),
            Err(Unreadable)
        );
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
