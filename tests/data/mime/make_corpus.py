#!/usr/bin/env python3
"""Writes the MIME corpus (*.eml) next to this script: CRLF line ends unless a case says
otherwise. Run it again after editing; the files are committed so tests do not need it.

Each message exercises one structure the parser, ENVELOPE and BODYSTRUCTURE must get right;
tests/integration/test_mime_differential.py compares popbridge with Dovecot on all of them.
"""
import base64
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES: list[tuple[str, bytes]] = []


def crlf(text: str, encoding: str = "utf-8") -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode(encoding)


def add(name: str, text, encoding: str = "utf-8", raw: bool = False) -> None:
    data = text if isinstance(text, bytes) else (text.encode(encoding) if raw else crlf(text, encoding))
    CASES.append((name, data))


def b64(data: bytes) -> str:
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


HDR = ("From: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>\n"
       "Date: Mon, 2 Mar 2026 10:00:00 +0100\nMessage-ID: <{id}@example.org>\n")

add("01-plain.eml", HDR.format(id="01") + "Subject: plain text\n\nHello Bob,\nthis is plain.\n")
add("02-no-content-type-no-blank.eml", "From: a@b.example\nSubject: header only, no body\n")
add("03-empty-body.eml", HDR.format(id="03") + "Subject: empty body\n\n")
add("04-multipart-mixed.eml", HDR.format(id="04") + """Subject: mixed with attachment
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln
--outer
Content-Type: application/pdf; name="invoice.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice.pdf"

""" + b64(b"%PDF-1.4 fake pdf bytes " * 20) + """
--outer--
epilogue text
""")
add("05-alternative.eml", HDR.format(id="05") + """Subject: alternative
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=alt1

--alt1
Content-Type: text/plain; charset=us-ascii

plain version
--alt1
Content-Type: text/html; charset=us-ascii

<p>html version</p>
--alt1--
""")
add("06-alternative-related.eml", HDR.format(id="06") + """Subject: alternative inside mixed, related inside alternative
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: multipart/alternative; boundary="a"

--a
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 cr=E8me
--a
Content-Type: multipart/related; boundary="r"; type="text/html"

--r
Content-Type: text/html; charset=utf-8

<img src="cid:logo@x">
--r
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64
Content-Disposition: inline

""" + b64(b"\x89PNG\r\n\x1a\n" + bytes(range(200))) + """
--r--
--a--
--m
Content-Type: text/plain; name=notes.txt
Content-Disposition: attachment; filename=notes.txt
Content-Language: en

notes
--m--
""")
add("07-message-rfc822.eml", HDR.format(id="07") + """Subject: Fwd: forwarded message
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain

See below.
--fwd
Content-Type: message/rfc822
Content-Description: forwarded message

From: Carol <carol@example.com>
To: Alice <alice@example.org>
Subject: the original
Date: Sun, 1 Mar 2026 09:00:00 +0000
Message-ID: <orig@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

original plain
--inner
Content-Type: text/html

<b>original</b>
--inner--
--fwd--
""")
add("08-message-rfc822-single.eml", HDR.format(id="08") + """Subject: message/rfc822 at top level
MIME-Version: 1.0
Content-Type: message/rfc822

From: Dan <dan@example.com>
Subject: inner single part

inner body line 1
inner body line 2
""")
add("09-rfc2231-continuations.eml", HDR.format(id="09") + """Subject: RFC 2231 parameters
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="p"

--p
Content-Type: text/plain

body
--p
Content-Type: application/octet-stream;
 name*0*=us-ascii'en'This%20is%20even%20more%20;
 name*1*=%2A%2A%2Afun%2A%2A%2A%20;
 name*2="isn't it!"
Content-Disposition: attachment;
 filename*=utf-8''%C3%A4rger%20%E2%82%AC.txt

AAAA
--p--
""")
add("10-encoded-words.eml", """From: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
To: =?utf-8?B?SsO8cmdlbg==?= <juergen@example.de>
Cc: =?windows-1252?Q?=93quoted=94?= <q@example.com>
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?utf-8?q?_aus_M=C3=BCnchen?=
Date: Tue, 3 Mar 2026 12:00:00 +0100
Message-ID: <10@example.org>

Body of encoded words message.
""")
add("11-8bit-headers.eml", """From: Jörg Müller <joerg@example.de>
To: Zoë <zoe@example.fr>
Subject: Größenänderung ohne Kodierung
Date: Tue, 3 Mar 2026 12:00:00 +0100
Message-ID: <11@example.org>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Größe
""")
add("12-latin1-8bit-headers.eml", """From: Jörg <joerg@example.de>
Subject: café latin1 raw
Date: Tue, 3 Mar 2026 12:00:00 +0100
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

crème brûlée
""", encoding="latin-1")
add("13-missing-headers.eml", "X-Only: nothing standard here\n\nbody without from, date, subject\n")
add("14-group-undisclosed.eml", """From: news@example.org
To: undisclosed-recipients:;
Subject: group, empty
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("15-group-members.eml", """From: boss@example.org
To: Team: ann@example.org, "Bob B." <bob@example.org>;, outsider@example.com
Cc: empty-group:;
Subject: group with members
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("16-address-comments.eml", """From: joe@example.org (Joe Q. Public)
To: "Doe, John" <john.doe@example.com>, (comment only) mary@example.net
Reply-To: Reply Desk <reply@example.org>
Sender: sender@example.org
Subject: comments and quoted names
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("17-quoted-local-part.eml", """From: "john smith"@example.com
To: "weird\\"quote"@example.com, <"spaced out"@example.com>
Subject: quoted local parts
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("18-obsolete-route.eml", """From: Pete <@relay1.example,@relay2.example:pete@example.com>
To: Mary Smith <mary@example.net>
Subject: obsolete source route
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("19-missing-angle-brackets.eml", """From: Alice alice@example.org
To: just-a-word, bob@example.net
Subject: missing angle brackets
Date: Wed, 4 Mar 2026 08:00:00 +0000

body
""")
add("20-missing-final-boundary.eml", HDR.format(id="20") + """Subject: no closing boundary
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="x"

--x
Content-Type: text/plain

first
--x
Content-Type: text/plain

second, and the message just ends
""")
add("21-no-boundary-lines.eml", HDR.format(id="21") + """Subject: boundary declared, never used
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="never"

just text, no parts at all
""")
add("22-multipart-without-boundary-param.eml", HDR.format(id="22") + """Subject: multipart without boundary
MIME-Version: 1.0
Content-Type: multipart/mixed

--oops
text
--oops--
""")
add("23-bare-lf.eml", "From: lf@example.org\nSubject: bare LF line ends\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nline one\nline two\n--b--\n", raw=True)
add("24-folded-headers.eml", """From: Folded
 Name <folded@example.org>
To: a@example.org,
\tb@example.org
Subject: a subject that is
 folded over
 three lines
Date: Thu, 5 Mar 2026
 10:00:00 +0000
Message-ID:
 <24@example.org>

body
""")
add("25-digest.eml", HDR.format(id="25") + """Subject: digest
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="d"

--d

From: one@example.org
Subject: digest one

first digest message
--d

From: two@example.org
Subject: digest two

second digest message
--d--
""")
add("26-nested-rfc822-twice.eml", HDR.format(id="26") + """Subject: message in message in message
MIME-Version: 1.0
Content-Type: message/rfc822

From: level1@example.org
Subject: level 1
Content-Type: message/rfc822

From: level2@example.org
Subject: level 2
Content-Type: text/plain

deepest body
""")
add("27-base64-text.eml", HDR.format(id="27") + """Subject: base64 text body
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + b64("Straße und Brücke, base64-kodiert\n".encode()) + "\n")
add("28-qp-latin1.eml", HDR.format(id="28") + """Subject: quoted-printable latin1
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Le caf=E9 est tr=E8s bon, soft=
 break here.
""")
add("29-windows-1252.eml", HDR.format(id="29") + """Subject: =?windows-1252?q?=80uro_price?=
MIME-Version: 1.0
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: quoted-printable

Price: 10 =80 =96 =93quoted=94
""")
add("30-empty-parts.eml", HDR.format(id="30") + """Subject: empty parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="e"

--e

--e
Content-Type: text/plain

--e
--e--
""")
add("31-boundary-prefix.eml", HDR.format(id="31") + """Subject: inner boundary extends the outer one
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="abc"

--abc
Content-Type: multipart/alternative; boundary="abcdef"

--abcdef
Content-Type: text/plain

inner one
--abcdef--
--abc
Content-Type: text/plain

outer two
--abc--
""")
add("32-mime-params-quoted.eml", HDR.format(id="32") + """Subject: parameters with quotes, comments, case
MIME-Version: 1.0
Content-Type: Text/Plain; CharSet="UTF-8"; format=flowed (comment); delsp=yes
Content-Transfer-Encoding: 7BIT
Content-ID: <part1@example.org>
Content-Description: a described part
Content-Location: http://example.org/x
Content-Language: en, de

flowed text
""")
add("33-disposition-inline-params.eml", HDR.format(id="33") + """Subject: disposition with dates
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="dd"

--dd
Content-Type: image/jpeg
Content-Disposition: inline; filename="photo.jpg"; size=12
Content-Transfer-Encoding: base64

/9j/4AAQ
--dd--
""")
add("34-unknown-charset-subject.eml", """From: x@example.org
Subject: =?x-unknown?q?keep_me?= and =?koi8-r?b?8NLJ18XU?=
Date: Thu, 5 Mar 2026 10:00:00 +0000

body
""")
add("35-japanese.eml", HDR.format(id="35") + """Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: base64

""" + b64("日本語の本文です。\n".encode()) + "\n")
add("36-in-reply-to.eml", """From: Bob <bob@example.net>
To: Alice <alice@example.org>
Subject: Re: plain text
Date: Fri, 6 Mar 2026 10:00:00 +0000
Message-ID: <36@example.net>
In-Reply-To: <01@example.org>
References: <01@example.org>

reply
""")
add("37-bcc-many.eml", """From: Alice <alice@example.org>
To: a1@example.org, a2@example.org, a3@example.org
Cc: c1@example.org
Bcc: hidden@example.org, "Hidden Two" <h2@example.org>
Subject: many recipients
Date: Fri, 6 Mar 2026 10:00:00 +0000

body
""")
add("38-header-no-colon.eml", """From: a@example.org
This line has no colon
Subject: garbage line in header
Date: Fri, 6 Mar 2026 10:00:00 +0000

body
""")
add("39-text-no-trailing-newline.eml", (HDR.format(id="39") + "Subject: no final newline\n\nlast line without newline").replace("\n", "\r\n").encode())
add("40-multipart-in-rfc822-in-multipart.eml", HDR.format(id="40") + """Subject: deep nesting
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="L1"

--L1
Content-Type: message/rfc822

Subject: nested
From: n@example.org
Content-Type: multipart/mixed; boundary="L2"

--L2
Content-Type: text/plain

nested text
--L2
Content-Type: message/rfc822

Subject: nested twice
From: n2@example.org

nested twice body
--L2--
--L1
Content-Type: text/plain

after
--L1--
""")
add("41-transport-padding.eml", HDR.format(id="41") + """Subject: boundary with trailing whitespace
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="tp"

--tp   
Content-Type: text/plain

one
--tp\t
Content-Type: text/plain

two
--tp--  
""")
add("42-long-subject.eml", HDR.format(id="42") + "Subject: " + " ".join(f"word{i}" for i in range(300)) + "\n\nbody\n")
add("43-quotes-in-subject.eml", HDR.format(id="43") + 'Subject: "quoted" and back\\slash\n\nbody\n')
add("44-mixed-case-type.eml", HDR.format(id="44") + """Subject: upper-case media types
MIME-Version: 1.0
Content-Type: MULTIPART/MIXED; BOUNDARY="UP"

--UP
Content-Type: TEXT/HTML; CHARSET=US-ASCII

<p>x</p>
--UP--
""")
add("45-search-latin.eml", """From: Søren <soren@example.dk>
To: ÅSA <asa@example.se>
Subject: =?iso-8859-1?q?=C6BLE_og_=F8l?=
Date: Sat, 7 Mar 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

=C6bler og =D8L p=E5 ST=C5LET
""")


def main() -> None:
    for old in HERE.glob("*.eml"):
        old.unlink()
    for name, data in CASES:
        (HERE / name).write_bytes(data)
    print(f"wrote {len(CASES)} messages to {HERE}")


if __name__ == "__main__":
    main()
