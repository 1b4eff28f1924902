"""Generic conditions and callbacks shared by every compiled procedure (pure: data and payload only)."""

from __future__ import annotations

from dialogs.engine import DialogModel
from dialogs.spec import Link, Picture


class ProcedureModel(DialogModel):
    # --- answers and requirements ----------------------------------------------------------------

    def keep_result(self) -> None:
        self.data.update(self.payload.get("keep", {}))

    def push_child(self) -> None:
        self.quiet = True
        self.data["pushed"] = self.state
        self.effect("push_dialog", name=self.payload["push"])

    def pushed_before(self) -> bool:
        """The child dialog already ran and the requirement is still unmet (declined, refused)."""
        return self.data.get("pushed") == self.state

    def clear_pushed(self) -> None:
        self.data.pop("pushed", None)

    def not_eligible(self) -> bool:
        return bool(self.payload.get("not_eligible"))

    def refused_choice(self) -> bool:
        return bool(self.payload.get("refused"))

    def first_option(self) -> bool:
        return self.payload.get("index") == 0

    def drop_step(self) -> None:
        """A step skipped by its condition forgets what it collected earlier (an answer changed)."""
        step = str(self.payload.get("step", ""))
        for key in [k for k in self.data if k.split("__", 1)[0] == step]:
            del self.data[key]

    # --- documents --------------------------------------------------------------------------------

    def keep_document(self) -> None:
        self.keep_result()
        if self.payload.get("received"):
            self.say("procedure/document_received", title=self.payload["received"])

    def upload_matches(self) -> bool:
        return self.payload.get("state") == self.state and bool(self.payload.get("document_id"))

    def keep_upload(self) -> None:
        self.data[str(self.payload["state"])] = int(self.payload["document_id"])
        self.say("procedure/document_received", title=self.payload.get("title", ""))

    # --- photo ------------------------------------------------------------------------------------

    def photo_ok(self) -> bool:
        return bool(self.payload.get("ok"))

    def photo_fixable(self) -> bool:
        return bool(self.payload.get("fixed_media_id"))

    def show_report(self) -> None:
        if self.payload.get("report"):
            self.say("photo/report_text", text=self.payload["report"])

    def show_fixed(self) -> None:
        self.show_report()
        self.replies.append(Picture(str(self.payload["fixed_media_id"])))
        self.data["fixed_photo_id"] = self.payload["photo_id"]
        self.data["fixed_url"] = self.payload.get("fixed_url", "")

    def accept_fixed(self) -> None:
        self.effect("accept_photo", photo_id=self.data.pop("fixed_photo_id"), fixed=True)
        self.data["photo_id"] = self.data.get("photo_id")

    def accept_photo(self) -> None:
        self.effect("accept_photo", photo_id=self.payload["photo_id"], fixed=False)

    # --- payment ----------------------------------------------------------------------------------

    def paid_already(self) -> bool:
        return bool(self.payload.get("paid"))

    def note_paid(self) -> None:
        self.say("procedure/already_paid", description=self.payload.get("description", ""))

    def show_pay_link(self) -> None:
        self.data["pay_url"] = self.payload["pay_url"]
        self.data["pay_item"] = self.payload["item"]
        self.data["pay_amount_yuan"] = self.payload["amount_yuan"]
        self.data["pay_description"] = self.payload["description"]
        self.replies.append(Link("pay/link_title", "pay/link_description", str(self.payload["pay_url"]),
                                 variables=dict(self.data)))

    def forget_pay_link(self) -> None:
        for key in ("pay_url", "pay_item", "pay_amount_yuan", "pay_description"):
            self.data.pop(key, None)

    # --- review, check and lock -------------------------------------------------------------------

    def can_reapply(self) -> bool:
        limit = self.data.get("reapply_limit", self.payload.get("reapply_limit", 99))
        return int(self.data.get("rejections", 0)) < int(limit)

    def note_rejection(self) -> None:
        self.data["rejections"] = int(self.data.get("rejections", 0)) + 1
        self.say("procedure/rejected", reasons=self.payload.get("reasons", []), note=self.payload.get("note", ""))
        self.data.pop("photo_id", None)

    def say_fixed(self) -> None:
        self.say("procedure/check_fixed", note=self.payload.get("note", ""))

    def tell_review_note(self) -> None:
        self.say("procedure/check_note", reasons=self.payload.get("reasons", []), note=self.payload.get("note", ""))

    def lock(self) -> None:
        self.data["locked"] = True
        self.effect("lock_procedure")

    # --- generated files --------------------------------------------------------------------------

    def show_pdf(self) -> None:
        self.say(str(self.payload["template"]), data=self.data, url=self.payload["url"],
                 hours=self.payload.get("hours", 24))

    def wants_edit(self) -> bool:
        return bool(self.payload.get("edit"))
