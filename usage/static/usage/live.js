// The live request view: rows arrive over the staff-only WebSocket as requests finish.
(function () {
  "use strict";
  const MAX_ROWS = 200;
  const body = document.querySelector("#live-requests tbody");
  const status = document.getElementById("live-status");
  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + "/ws/usage/live/");
    socket.onopen = () => { status.textContent = "live"; };
    socket.onclose = () => { status.textContent = "disconnected, retrying…"; setTimeout(connect, 2000); };
    socket.onmessage = (event) => {
      for (const item of JSON.parse(event.data).rows) {
        const row = document.createElement("tr");
        for (const value of [item.time, item.request_id, item.user, item.model, item.outcome, item.http_status,
          item.input_tokens + (item.tokens_estimated ? " (est.)" : ""), item.output_tokens,
          item.first_token_ms, item.duration_ms]) {
          cell(row, value);
        }
        body.insertBefore(row, body.firstChild);
      }
      while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    };
  }
  connect();
})();
