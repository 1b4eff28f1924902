/* The chat simulator's page: one simulated student per tab (sessionStorage), no secrets here.
   The server signs and posts every callback; this page only says what the student did and shows
   what the student received: passive replies at once, customer-service and template messages
   from the stand-in's inbox (polled). Everything is built with DOM calls, never innerHTML. */
(function () {
  "use strict";
  var API = "/simulator/api/";
  var KEY = "gradbot-simulator";
  var POLL_MS = 1000;
  var URL_RE = /(https?:\/\/[^\s<>"'，。；！？、）】」]+)/g;
  var CHANNELS = { reply: "被动回复", cs: "客服消息", template: "模板消息" };
  var chat = document.getElementById("chat");
  var text = document.getElementById("text");
  var photo = document.getElementById("photo");
  var state = load();
  var polling = false;
  var pendingPicker = null;

  function randomId(n) {
    var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    var bytes = new Uint8Array(n);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return abc[b % abc.length]; }).join("");
  }
  function fresh() { return { openid: "oSim_" + randomId(23), followed: false, cursor: 0, log: [] }; }
  function load() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(KEY) || "null");
      if (saved && saved.openid) { return saved; }
    } catch (e) { /* a broken record: start a new student */ }
    return fresh();
  }
  function save() { window.sessionStorage.setItem(KEY, JSON.stringify(state)); }

  // -- drawing ----------------------------------------------------------------------------------
  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (content !== undefined) { node.textContent = content; }
    return node;
  }
  function link(url, cls, content) {
    var a = el("a", cls, content);
    if (/^https?:\/\//.test(url)) { a.href = url; a.target = "_blank"; a.rel = "noopener"; }
    return a;
  }
  function linkified(value) {
    var box = el("div", "bubble");
    String(value).split(URL_RE).forEach(function (part, i) {
      box.appendChild(i % 2 ? link(part, "", part) : document.createTextNode(part));
    });
    return box;
  }
  function clock(at) {
    var d = new Date((at || Date.now() / 1000) * 1000);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (n) { return n < 10 ? "0" + n : n; }).join(":");
  }
  function newsCard(m) {
    var card = link(m.url, "card");
    card.appendChild(el("div", "title", m.title));
    if (m.description) { card.appendChild(el("div", "desc", m.description)); }
    if (m.picurl) { var img = el("img"); img.src = m.picurl; img.alt = ""; card.appendChild(img); }
    return card;
  }
  function templateCard(m) {
    var card = m.url ? link(m.url, "card template") : el("div", "card template");
    card.appendChild(el("div", "title", m.title));
    var list = el("dl");
    (m.fields || []).forEach(function (f) { list.appendChild(el("dt", "", f.name)); list.appendChild(el("dd", "", f.value)); });
    card.appendChild(list);
    if (m.url) { card.appendChild(el("span", "more", "详情")); }
    return card;
  }
  function body(m) {
    if (m.type === "image") {
      var box = el("div", "bubble");
      var img = el("img", "pic");
      img.alt = m.mine ? "我发送的照片" : "收到的图片";
      img.src = m.media_id ? API + "media/" + encodeURIComponent(m.media_id) : (m.preview || "");
      box.appendChild(img);
      return box;
    }
    if (m.type === "news") { return newsCard(m); }
    if (m.type === "template") { return templateCard(m); }
    if (m.type === "event") { return el("div", "bubble", m.label || m.event); }
    return linkified(m.content || "");
  }
  function draw(m) {
    var item = el("li", m.type === "event" || m.type === "note" ? "system" : m.mine ? "mine" : "theirs");
    item.dataset.type = m.type;
    if (m.channel) { item.dataset.channel = m.channel; }
    if (m.failed) { item.classList.add("failed"); }
    item.appendChild(el("span", "time", clock(m.at)));
    item.appendChild(body(m));
    if (!m.mine && CHANNELS[m.channel]) { item.appendChild(el("span", "channel", CHANNELS[m.channel])); }
    chat.appendChild(item);
    chat.scrollTop = chat.scrollHeight;
    return item;
  }
  function add(m) { state.log.push(m); save(); return draw(m); }
  function note(content) { add({ type: "note", content: content, at: Date.now() / 1000 }); }
  function redraw() {
    chat.textContent = "";
    state.log.forEach(draw);
    document.getElementById("who").textContent = state.openid;
    document.getElementById("follow-box").hidden = state.followed;
    document.getElementById("composer").hidden = !state.followed;
    document.getElementById("menu").hidden = !state.followed;
  }

  // -- talking to the server -------------------------------------------------------------------
  function answer(res) {
    return res.json().catch(function () { return {}; }).then(function (data) {
      if (!res.ok) { throw new Error(data.error || ("HTTP " + res.status)); }
      return data;
    });
  }
  function deliver(request, mine) {
    var index = mine ? state.log.push(mine) - 1 : -1;
    if (mine) { save(); draw(mine); }
    return request.then(answer).then(function (data) {
      if (mine && data.sent && data.sent.media_id) { state.log[index].media_id = data.sent.media_id; save(); }
      (data.replies || []).forEach(function (r) { add(r); });
      poll();
      return data;
    }).catch(function (err) {
      if (mine) { state.log[index].failed = true; save(); redraw(); }
      note("没有送达：" + err.message);
      throw err;
    });
  }
  function postJson(payload) {
    return fetch(API + "send", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ openid: state.openid }, payload)) });
  }
  function sendText(value) {
    return deliver(postJson({ text: value }), { type: "text", content: value, mine: true, at: Date.now() / 1000 });
  }
  function sendEvent(event, key, label) {
    var mine = { type: "event", event: event, key: key || "", label: label, mine: true, at: Date.now() / 1000 };
    return deliver(postJson({ event: event, key: key || "" }), mine);
  }
  function sendPhoto(file) {
    var form = new FormData();
    form.append("openid", state.openid);
    form.append("photo", file, file.name || "photo.jpg");
    var mine = { type: "image", mine: true, at: Date.now() / 1000 };
    return deliver(fetch(API + "send", { method: "POST", body: form }), mine);
  }
  function poll() {
    if (polling || !state.followed) { return; }
    polling = true;
    fetch(API + "inbox/" + encodeURIComponent(state.openid) + "?since=" + state.cursor)
      .then(answer)
      .then(function (data) {
        (data.items || []).forEach(function (m) { add(m); });
        state.cursor = data.next;
        save();
      })
      .catch(function () { /* the stand-in may be restarting: the next poll tries again */ })
      .then(function () { polling = false; });
  }

  // -- the menu --------------------------------------------------------------------------------
  function closeMenus() {
    Array.prototype.forEach.call(document.querySelectorAll(".menu ul"), function (u) { u.hidden = true; });
  }
  function press(button) {
    closeMenus();
    var label = "点击菜单「" + button.name + "」";
    if (button.type === "click") { return sendEvent("CLICK", button.key, label); }
    if (button.type === "view") {
      window.open(button.url, "_blank", "noopener");
      return sendEvent("VIEW", button.url, label);
    }
    if (/^pic_/.test(button.type)) {
      photo.click();  // the label's click handler runs inside this call and clears any older picker
      pendingPicker = { type: button.type, key: button.key, label: label };
      return null;
    }
    note("模拟器不支持这种菜单：" + button.type);
    return null;
  }
  function menuButton(button) {
    var b = el("button", "", button.name);
    b.type = "button";
    b.addEventListener("click", function (e) { e.stopPropagation(); press(button); });
    return b;
  }
  function drawMenu(buttons) {
    var menu = document.getElementById("menu");
    menu.textContent = "";
    buttons.forEach(function (top) {
      var cell = el("div");
      var subs = top.sub_button || [];
      if (!subs.length) { cell.appendChild(menuButton(top)); menu.appendChild(cell); return; }
      var opener = el("button", "has-sub", top.name);
      opener.type = "button";
      var list = el("ul");
      list.hidden = true;
      subs.forEach(function (sub) { var li = el("li"); li.appendChild(menuButton(sub)); list.appendChild(li); });
      opener.addEventListener("click", function (e) {
        e.stopPropagation();
        var open = list.hidden;
        closeMenus();
        list.hidden = !open;
      });
      cell.appendChild(list);
      cell.appendChild(opener);
      menu.appendChild(cell);
    });
  }
  function drawHints(hints) {
    var names = { name: "姓名", id_number: "身份证号", province: "省份", city: "城市", school: "学校",
      cohort: "届别", code: "采集码", start: "开始办理" };
    var list = document.getElementById("hints");
    Object.keys(names).forEach(function (k) {
      if (!hints[k]) { return; }
      list.appendChild(el("dt", "", names[k]));
      list.appendChild(el("dd", "", hints[k]));
    });
  }

  // -- wiring ------------------------------------------------------------------------------------
  document.getElementById("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    var value = text.value;
    if (!value.trim()) { return; }
    text.value = "";
    sendText(value).catch(function () { /* shown in the chat */ });
  });
  photo.parentNode.addEventListener("click", function () { pendingPicker = null; });
  photo.addEventListener("change", function () {
    var file = photo.files && photo.files[0];
    var picker = pendingPicker;
    pendingPicker = null;
    photo.value = "";
    if (!file) { return; }
    var first = picker ? sendEvent(picker.type, picker.key, picker.label) : Promise.resolve();
    first.then(function () { return sendPhoto(file); }).catch(function () { /* shown in the chat */ });
  });
  document.getElementById("follow").addEventListener("click", function () {
    state.followed = true;
    save();
    redraw();
    sendEvent("subscribe", "", "关注了公众号").catch(function () { /* shown in the chat */ });
  });
  document.getElementById("unfollow").addEventListener("click", function () {
    if (!state.followed) { return; }
    sendEvent("unsubscribe", "", "取消了关注").catch(function () { /* shown in the chat */ });
    state.followed = false;
    save();
    redraw();
  });
  document.getElementById("new-student").addEventListener("click", function () {
    state = fresh();
    save();
    redraw();
  });
  document.addEventListener("click", closeMenus);

  fetch(API + "config").then(answer).then(function (config) {
    drawMenu(config.menu || []);
    drawHints(config.hints || {});
  }).catch(function (err) { note("读取菜单失败：" + err.message); });
  redraw();
  window.setInterval(poll, POLL_MS);
})();
