// Command gohub is a minimal chat hub in the usual gorilla/websocket pattern
// (one hub goroutine per process, a read pump and a write pump per client)
// with Redis pub/sub so that several hub processes share rooms. It is a peer
// to measure the gateway's CPU against, not a product: it speaks only the part
// of PROTOCOL.md that a connect-and-join storm and a room fan-out need
// (welcome, join_room/joined, chat in a room, ping/pong), keeps no history,
// counts members per process only, and numbers messages with a per-process
// counter.
//
//	gohub -listen 127.0.0.1:9001 -redis 127.0.0.1:6379 -id hub1
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/websocket"
)

const (
	channelPrefix  = "chat:room:"
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = pongWait * 9 / 10
	maxMessageSize = 64 << 10
	sendQueue      = 256
)

var (
	gatewayID string
	connSeq   uint64 // connection ids
	msgSeq    uint64 // message ids: per process, good enough for a benchmark
)

func nowMs() int64 { return time.Now().UnixMilli() }

// Frames sent to clients. Field order follows PROTOCOL.md.
type welcomeFrame struct {
	Type      string `json:"type"`
	Content   string `json:"content"`
	Sender    string `json:"sender"`
	ID        string `json:"id"`
	Gateway   string `json:"gateway"`
	Username  string `json:"username"`
	Timestamp int64  `json:"timestamp"`
}

type joinedFrame struct {
	Type      string            `json:"type"`
	Room      string            `json:"room"`
	Members   int               `json:"members"`
	History   []json.RawMessage `json:"history"`
	Truncated bool              `json:"truncated"`
}

type chatFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Room      string `json:"room"`
	Sender    string `json:"sender"`
	Content   string `json:"content"`
	Timestamp int64  `json:"timestamp"`
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Content string `json:"content"`
}

// inbound is what clients send.
type inbound struct {
	Type    string `json:"type"`
	Room    string `json:"room"`
	Content string `json:"content"`
}

var pongFrame = []byte(`{"type":"pong"}`)

func mustJSON(v interface{}) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Client is one WebSocket connection.
type Client struct {
	hub   *Hub
	conn  *websocket.Conn
	name  string
	send  chan []byte
	rooms map[string]bool // rooms asked to join; owned by the read pump
}

type joinReq struct {
	c    *Client
	room string
}

// reply is a frame for one client from its own read pump: it goes through
// the hub, the only writer of c.send (which the hub closes).
type reply struct {
	c *Client
	b []byte
}

type redisMsg struct {
	room    string
	payload []byte
}

// room states: the hub subscribes a room's channel while it has local members.
const (
	subscribing = iota
	live
	unsubscribing
)

type room struct {
	state   int
	members map[*Client]bool
	waiting []*Client // joined once the subscription is live
}

// Hub owns every room and client set; only its goroutine touches them.
type Hub struct {
	psc          redis.PubSubConn // the hub writes (un)subscribes, receive() reads
	rooms        map[string]*room
	clients      map[*Client]map[string]bool // each client's rooms, joined or waiting
	register     chan *Client
	unregister   chan *Client
	join         chan joinReq
	leave        chan joinReq
	reply        chan reply
	deliver      chan redisMsg
	subscribed   chan string
	unsubscribed chan string
}

func newHub(psc redis.PubSubConn) *Hub {
	return &Hub{
		psc:          psc,
		rooms:        make(map[string]*room),
		clients:      make(map[*Client]map[string]bool),
		register:     make(chan *Client),
		unregister:   make(chan *Client),
		join:         make(chan joinReq),
		leave:        make(chan joinReq),
		reply:        make(chan reply),
		deliver:      make(chan redisMsg, 1024),
		subscribed:   make(chan string, 64),
		unsubscribed: make(chan string, 64),
	}
}

// push queues a frame for c; a client that does not keep up is dropped,
// as in the gorilla chat example.
func (h *Hub) push(c *Client, b []byte) {
	select {
	case c.send <- b:
	default:
		h.drop(c)
	}
}

func (h *Hub) drop(c *Client) {
	rooms, ok := h.clients[c]
	if !ok {
		return
	}
	delete(h.clients, c)
	close(c.send)
	for name := range rooms {
		if r := h.rooms[name]; r != nil {
			h.removeMember(name, r, c)
		}
	}
}

func (h *Hub) subscribe(name string) {
	if err := h.psc.Subscribe(channelPrefix + name); err != nil {
		log.Fatalf("redis subscribe: %v", err)
	}
}

func (h *Hub) removeMember(name string, r *room, c *Client) {
	delete(r.members, c)
	for i, w := range r.waiting {
		if w == c {
			r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
			break
		}
	}
	if r.state == live && len(r.members) == 0 {
		r.state = unsubscribing
		if err := h.psc.Unsubscribe(channelPrefix + name); err != nil {
			log.Fatalf("redis unsubscribe: %v", err)
		}
	}
}

func (h *Hub) admit(name string, r *room, c *Client) {
	r.members[c] = true
	h.push(c, mustJSON(joinedFrame{"joined", name, len(r.members), []json.RawMessage{}, false}))
}

func (h *Hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = make(map[string]bool)
		case c := <-h.unregister:
			h.drop(c)
		case j := <-h.join:
			rooms, ok := h.clients[j.c]
			if !ok || rooms[j.room] {
				break
			}
			rooms[j.room] = true
			r := h.rooms[j.room]
			switch {
			case r == nil:
				r = &room{state: subscribing, members: make(map[*Client]bool)}
				h.rooms[j.room] = r
				r.waiting = append(r.waiting, j.c)
				h.subscribe(j.room)
			case r.state == live:
				h.admit(j.room, r, j.c)
			default: // a (re)subscription is under way
				r.waiting = append(r.waiting, j.c)
			}
		case j := <-h.leave:
			if rooms, ok := h.clients[j.c]; ok && rooms[j.room] {
				delete(rooms, j.room)
				h.removeMember(j.room, h.rooms[j.room], j.c)
				h.push(j.c, mustJSON(map[string]string{"type": "left", "room": j.room}))
			}
		case r := <-h.reply:
			if _, ok := h.clients[r.c]; ok {
				h.push(r.c, r.b)
			}
		case name := <-h.subscribed:
			r := h.rooms[name]
			if r == nil || r.state != subscribing {
				break
			}
			r.state = live
			waiting := r.waiting
			r.waiting = nil
			for _, c := range waiting {
				h.admit(name, r, c) // waiting holds only connected clients
			}
			h.removeMember(name, r, nil) // unsubscribes if everyone left meanwhile
		case name := <-h.unsubscribed:
			r := h.rooms[name]
			if r == nil || r.state != unsubscribing {
				break
			}
			if len(r.waiting) > 0 {
				r.state = subscribing
				h.subscribe(name)
			} else {
				delete(h.rooms, name)
			}
		case m := <-h.deliver:
			if r := h.rooms[m.room]; r != nil {
				for c := range r.members {
					h.push(c, m.payload)
				}
			}
		}
	}
}

// receive reads the subscription connection and hands everything to the hub.
func (h *Hub) receive() {
	for {
		switch v := h.psc.Receive().(type) {
		case redis.Message:
			h.deliver <- redisMsg{v.Channel[len(channelPrefix):], v.Data}
		case redis.Subscription:
			name := v.Channel[len(channelPrefix):]
			if v.Kind == "subscribe" {
				h.subscribed <- name
			} else if v.Kind == "unsubscribe" {
				h.unsubscribed <- name
			}
		case error:
			log.Fatalf("redis subscription connection: %v", v)
		}
	}
}

func (c *Client) fail(code, why string) {
	c.hub.reply <- reply{c, mustJSON(errorFrame{"error", code, why})}
}

// readPump handles the client's frames until the connection ends.
func (c *Client) readPump(pool *redis.Pool) {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		c.conn.SetReadDeadline(time.Now().Add(pongWait))
		return nil
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var m inbound
		if json.Unmarshal(data, &m) != nil {
			c.fail("bad_json", "not a JSON object")
			continue
		}
		switch m.Type {
		case "ping":
			c.hub.reply <- reply{c, pongFrame}
		case "join_room", "leave_room":
			if m.Room == "" || len(m.Room) > 64 {
				c.fail("bad_room", "bad room name")
				continue
			}
			if m.Type == "join_room" {
				c.rooms[m.Room] = true
				c.hub.join <- joinReq{c, m.Room}
			} else {
				delete(c.rooms, m.Room)
				c.hub.leave <- joinReq{c, m.Room}
			}
		case "chat":
			if !c.rooms[m.Room] {
				c.fail("not_in_room", "join the room first")
				continue
			}
			ms := nowMs()
			frame := mustJSON(chatFrame{"chat",
				strconv.FormatInt(ms, 10) + "-" + strconv.FormatUint(atomic.AddUint64(&msgSeq, 1), 10),
				m.Room, c.name, m.Content, ms})
			rc := pool.Get()
			_, err := rc.Do("PUBLISH", channelPrefix+m.Room, frame)
			rc.Close()
			if err != nil {
				c.fail("unavailable", "could not reach the cluster")
			}
		default:
			c.fail("unknown_type", "unknown type")
		}
	}
}

// writePump writes queued frames, one per WebSocket message, and pings.
func (c *Client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case b, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func serveWs(hub *Hub, pool *redis.Pool, w http.ResponseWriter, r *http.Request) {
	id := atomic.AddUint64(&connSeq, 1)
	name := r.URL.Query().Get("username")
	if name == "" {
		name = "User" + strconv.FormatUint(id, 10)
	} else if len(name) > 32 || !utf8.ValidString(name) {
		http.Error(w, "bad username", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &Client{hub: hub, conn: conn, name: name, send: make(chan []byte, sendQueue),
		rooms: make(map[string]bool)}
	c.send <- mustJSON(welcomeFrame{"welcome", "Welcome, " + name + "!", "System",
		gatewayID + "-" + strconv.FormatUint(id, 10), gatewayID, name, nowMs()})
	hub.register <- c
	go c.writePump()
	go c.readPump(pool)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to serve on")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	flag.StringVar(&gatewayID, "id", "gohub", "this process's id")
	flag.Parse()

	dial := func() (redis.Conn, error) { return redis.Dial("tcp", *redisAddr) }
	pool := &redis.Pool{Dial: dial, MaxIdle: 64, IdleTimeout: time.Minute}
	sc, err := dial()
	if err != nil {
		log.Fatalf("redis: %v", err)
	}
	hub := newHub(redis.PubSubConn{Conn: sc})
	go hub.receive()
	go hub.run()

	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { serveWs(hub, pool, w, r) })
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	log.Printf("gohub %s on %s, redis %s", gatewayID, *listen, *redisAddr)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
